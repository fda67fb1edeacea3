"""Session access through the WebSocket: a signed token is not enough. The socket checks the
user may see the session on subscribe and on every command, and a revoked parent token closes
the socket and voids every WebSocket token minted from it.

In process (``openinspect.testing.asgi``): these are claims about the socket handler and the
store, not about the HTTP server in front of them."""

from __future__ import annotations

import json

from openinspect.api.auth import WsTokens, load_or_create_secret
from openinspect.api.ws import CLOSE_AUTH, CLOSE_NOT_FOUND
from openinspect.controlplane import ControlPlane
from openinspect.store.tables import participants
from openinspect.testing.asgi import Caller, InApp

COMMANDS = (
    {"type": "prompt", "content": "hello"},
    {"type": "cancel-prompt", "prompt_id": "prm_x"},
    {"type": "stop"},
    {"type": "typing"},
    {"type": "presence", "status": "idle"},
    {"type": "history", "before_seq": 10},
)


def forge(plane: ControlPlane, session_id: str, user_id: str, token_id: str) -> str:
    """A WebSocket token with a valid signature, made with the server's own secret — what a
    member who learnt the secret could make."""
    secret = load_or_create_secret(plane.settings.home_dir)
    return WsTokens(secret, 300).mint(session_id, user_id, token_id)[0]


async def _token_id(caller: Caller) -> str:
    found = await caller.app.plane.store.users.lookup(caller.token)
    assert found is not None
    return found.token_id


async def _refused_with(caller: Caller, session_id: str, token: str) -> int:
    async with caller.app.connect(session_id) as ws:
        await ws.send({"type": "subscribe", "token": token})
        return await ws.close_code()


async def test_a_validly_signed_token_for_someone_elses_session_is_refused(
    api: InApp, calc: str
) -> None:
    ada, bob = await api.member("ada"), await api.member("bob")
    theirs = (await bob.session(repo=calc))["id"]
    token_id = await _token_id(ada)
    token = forge(api.plane, theirs, ada.user.id, token_id)
    assert await _refused_with(ada, theirs, token) == CLOSE_NOT_FOUND
    # The same answer as for a session that does not exist: nothing is revealed.
    nope = forge(api.plane, "ses_nope", ada.user.id, token_id)
    assert await _refused_with(ada, "ses_nope", nope) == CLOSE_NOT_FOUND
    # bob's own token works, and an admin's.
    async with bob.socket(theirs) as (ws, _):
        await ws.send({"type": "history", "before_seq": 5})
        assert (await ws.reply())["type"] == "history-page"
    async with api.admin().socket(theirs) as (_, subscribed):
        assert subscribed["session"]["id"] == theirs


async def test_every_command_is_authorised_again(api: InApp, calc: str) -> None:
    ada = await api.member("ada")
    session_id = (await ada.session(repo=calc))["id"]
    for command in COMMANDS:
        # ada subscribes legitimately, then loses access (the session's participants are
        # rewritten to exclude her, as if it were someone else's): the next command is refused.
        async with ada.socket(session_id) as (ws, _):
            await _hide_from(api.plane, session_id, ada.user.id)
            await ws.send(command)
            assert await ws.close_code() == CLOSE_NOT_FOUND, command
            await api.plane.store.sessions.add_participant(session_id, ada.user.id)


async def test_revoking_the_parent_token_closes_the_socket_and_voids_ws_tokens(
    api: InApp, calc: str
) -> None:
    ada = await api.member("ada")
    session_id = (await ada.session(repo=calc))["id"]
    spare = await ada.ws_token(session_id)
    async with ada.socket(session_id) as (ws, _):
        revoked = await ada.call("DELETE", f"/api/tokens/{await _token_id(ada)}")
        assert revoked.status_code == 204
        # Only listening, no command: the periodic re-check (0.5 s here) closes it.
        assert await ws.close_code(timeout_s=5) == CLOSE_AUTH
    assert await _refused_with(ada, session_id, spare) == CLOSE_AUTH


async def test_a_demoted_admin_loses_other_peoples_sockets(api: InApp, calc: str) -> None:
    ada = await api.member("ada")
    session_id = (await ada.session(repo=calc))["id"]
    users = api.plane.store.users
    boss_user = await users.create(name="boss", email="boss@example.com", role="admin")
    boss = Caller(api, boss_user, await users.create_token(boss_user.id, "boss"))
    async with boss.socket(session_id) as (ws, _):
        await users.set_role(boss_user.id, "member")
        assert await ws.close_code(timeout_s=5) == CLOSE_NOT_FOUND


async def _hide_from(plane: ControlPlane, session_id: str, user_id: str) -> None:
    """Take the user out of the session's participants (members see only sessions they take
    part in), as if the session were someone else's."""
    async with plane.store.engine.begin() as conn:
        await conn.execute(
            participants.delete().where(
                participants.c.session_id == session_id, participants.c.user_id == user_id
            )
        )


async def test_members_see_no_server_paths_over_the_websocket(api: InApp, calc: str) -> None:
    """The joining snapshot and history pages carry the session's origin: for a member, a local
    repo is ``local/<name>``, as over REST."""
    ada = await api.member("ada")
    session_id = (await ada.session(repo=calc))["id"]
    home = str(api.plane.settings.home_dir)
    async with ada.socket(session_id) as (ws, subscribed):
        await ws.send({"type": "history", "before_seq": 100})
        page = await ws.reply()
    assert page["type"] == "history-page"
    assert subscribed["session"]["repo_url"].startswith("local/")
    assert any(e["type"] == "session-created" for e in page["events"] + subscribed["events"])
    for frame in (subscribed, page):
        text = json.dumps(frame)
        assert home not in text
        assert "/tmp/" not in text, text[:2000]
    async with api.admin().socket(session_id) as (_, admin_view):  # an admin sees the repo
        assert not admin_view["session"]["repo_url"].startswith("local/")
