"""Session access through the WebSocket: a signed token is not enough. The socket checks the
user may see the session on subscribe and on every command, and a revoked parent token closes
the socket and voids every WebSocket token minted from it."""

from __future__ import annotations

import json

import websockets

from openinspect.api.auth import WsTokens, load_or_create_secret
from openinspect.store.tables import participants
from tests.security.conftest import Live, close_code, recv_json

COMMANDS = (
    {"type": "prompt", "content": "hello"},
    {"type": "cancel-prompt", "prompt_id": "prm_x"},
    {"type": "stop"},
    {"type": "typing"},
    {"type": "presence", "status": "idle"},
    {"type": "history", "before_seq": 10},
)


def forge(live: Live, session_id: str, user_id: str, token_id: str) -> str:
    """A WebSocket token with a valid signature, made with the server's own secret — what a
    member who learnt the secret could make."""
    secret = load_or_create_secret(live.plane.settings.home_dir)
    return WsTokens(secret, 300).mint(session_id, user_id, token_id)[0]


async def test_a_validly_signed_token_for_someone_elses_session_is_refused(live: Live) -> None:
    ada_id, ada = await live.member("ada")
    _, bob = await live.member("bob")
    theirs = await live.session(bob)
    ada_found = await live.plane.store.users.lookup(ada)
    assert ada_found is not None
    token = forge(live, theirs["id"], ada_id, ada_found.token_id)
    async with live.socket(theirs["id"]) as ws:
        await ws.send(json.dumps({"type": "subscribe", "token": token}))
        assert await close_code(ws) == 4004
    # The same answer as for a session that does not exist: nothing is revealed.
    async with live.socket("ses_nope") as ws:
        await ws.send(
            json.dumps(
                {"type": "subscribe", "token": forge(live, "ses_nope", ada_id, ada_found.token_id)}
            )
        )
        assert await close_code(ws) == 4004
    # bob's own token works, and an admin's.
    async with live.socket(theirs["id"], await live.ws_token(bob, theirs["id"])) as ws:
        await ws.send(json.dumps({"type": "history", "before_seq": 5}))
        assert (await recv_json(ws))["type"] == "history-page"
    async with live.socket(theirs["id"], await live.ws_token(live.admin_token, theirs["id"])):
        pass


async def test_every_command_is_authorised_again(live: Live) -> None:
    ada_id, ada = await live.member("ada")
    session = await live.session(ada)
    for command in COMMANDS:
        # ada subscribes legitimately, then loses access (the session's participants are
        # rewritten to exclude her, as if it were someone else's): the next command is refused.
        async with live.socket(session["id"], await live.ws_token(ada, session["id"])) as ws:
            await _hide_from(live, session["id"], ada_id)
            await ws.send(json.dumps(command))
            assert await close_code(ws) == 4004, command
            await _show_to(live, session["id"], ada_id)


async def test_revoking_the_parent_token_closes_the_socket_and_voids_ws_tokens(live: Live) -> None:
    _, ada = await live.member("ada")
    session = await live.session(ada)
    found = await live.plane.store.users.lookup(ada)
    assert found is not None
    spare = await live.ws_token(ada, session["id"])
    async with live.socket(session["id"], await live.ws_token(ada, session["id"])) as ws:
        assert (await live.call(ada, "DELETE", f"/api/tokens/{found.token_id}")).status_code == 204
        # Only listening, no command: the periodic re-check (0.5 s here) closes it.
        assert await close_code(ws, timeout_s=5) == 4001
    async with live.socket(session["id"]) as ws:
        await ws.send(json.dumps({"type": "subscribe", "token": spare}))
        assert await close_code(ws) == 4001


async def test_a_demoted_admin_loses_other_peoples_sockets(live: Live) -> None:
    _, ada = await live.member("ada")
    session = await live.session(ada)
    users = live.plane.store.users
    boss = await users.create(name="boss", email="boss@example.com", role="admin")
    boss_token = await users.create_token(boss.id, "boss")
    async with live.socket(session["id"], await live.ws_token(boss_token, session["id"])) as ws:
        await users.set_role(boss.id, "member")
        assert await close_code(ws, timeout_s=5) == 4004


async def _hide_from(live: Live, session_id: str, user_id: str) -> None:
    """Take the user out of the session's participants (members see only sessions they take
    part in), as if the session were someone else's."""
    async with live.plane.store.engine.begin() as conn:
        await conn.execute(
            participants.delete().where(
                participants.c.session_id == session_id, participants.c.user_id == user_id
            )
        )


async def _show_to(live: Live, session_id: str, user_id: str) -> None:
    await live.plane.store.sessions.add_participant(session_id, user_id)


async def test_members_see_no_server_paths_over_the_websocket(live: Live) -> None:
    """The joining snapshot and history pages carry the session's origin: for a member, a local
    repo is ``local/<name>``, as over REST."""
    _, ada = await live.member("ada")
    session = await live.session(ada)
    home = str(live.plane.settings.home_dir)
    async with websockets.connect(live.ws_url(session["id"])) as ws:
        token = await live.ws_token(ada, session["id"])
        await ws.send(json.dumps({"type": "subscribe", "token": token}))
        subscribed = await recv_json(ws)
        await ws.send(json.dumps({"type": "history", "before_seq": 100}))
        page = await recv_json(ws)
    assert subscribed["type"] == "subscribed"
    assert page["type"] == "history-page"
    assert subscribed["session"]["repo_url"].startswith("local/")
    assert any(e["type"] == "session-created" for e in page["events"] + subscribed["events"])
    for frame in (subscribed, page):
        text = json.dumps(frame)
        assert home not in text
        assert "/tmp/" not in text, text[:2000]
    async with live.socket(session["id"]) as ws:  # an admin still sees where the repo is
        await ws.send(
            json.dumps(
                {"type": "subscribe", "token": await live.ws_token(live.admin_token, session["id"])}
            )
        )
        admin_view = await recv_json(ws)
    assert not admin_view["session"]["repo_url"].startswith("local/")
