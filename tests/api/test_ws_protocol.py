"""The session WebSocket protocol, in process (``openinspect.testing.asgi``): subscribe and resume
by ``since_seq``, history pages, live events exactly once, error frames and close codes.

Sessions are made as store rows with events appended through the real event log, so no git
mirror and no sandbox is involved; what a real server adds (uvicorn's frame limit, UTF-8 checks,
a client that stops reading) is tested against one in ``tests/security/test_ws_frames.py``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from openinspect.api import ws as ws_module
from openinspect.api.ws import CLOSE_AUTH, CLOSE_AUTH_TIMEOUT, CLOSE_NOT_FOUND
from openinspect.controlplane import ControlPlane
from openinspect.domain.events import AgentTextDelta, WarningEvent
from openinspect.domain.ids import new_id
from openinspect.domain.models import User
from openinspect.testing.asgi import Caller, InApp
from tests.store.records import session_record


async def _session(plane: ControlPlane, user: User) -> str:
    session_id = new_id("ses")
    await plane.store.sessions.create(session_record(session_id, user.id))
    return session_id


async def _append(plane: ControlPlane, session_id: str, count: int) -> list[int]:
    """``count`` durable events through the event log; their seqs."""
    seqs = []
    for i in range(count):
        event = WarningEvent(session_id=session_id, code="note", message=f"note {i}")
        seqs.append((await plane.events.append(event)).seq)
    return seqs


def _seqs(frame: dict[str, Any]) -> list[int]:
    return [e["seq"] for e in frame["events"]]


def _is_event(frame: dict[str, Any]) -> bool:
    return bool(frame["type"] == "event")


async def test_a_subscribe_gets_the_session_its_log_and_then_each_new_event_once(
    api: InApp, plane: ControlPlane
) -> None:
    admin = api.admin()
    sid = await _session(plane, admin.user)
    assert await _append(plane, sid, 3) == [1, 2, 3]
    async with admin.socket(sid) as (ws, subscribed):
        assert subscribed["session"]["id"] == sid
        assert _seqs(subscribed) == [1, 2, 3] and subscribed["last_seq"] == 3
        # A fresh join: the client drops whatever it had; nothing older is left to page.
        assert (subscribed["has_more"], subscribed["reset"]) == (False, True)
        assert subscribed["queue"] == []
        await _append(plane, sid, 2)
        got = [(await ws.until(_is_event))["event"]["seq"] for _ in range(2)]
        assert got == [4, 5]
        await ws.send({"type": "ping"})
        assert await ws.reply() == {"type": "pong"}  # nothing else was sent in between


async def test_a_resume_gets_exactly_what_came_after_since_seq(
    api: InApp, plane: ControlPlane
) -> None:
    admin = api.admin()
    sid = await _session(plane, admin.user)
    await _append(plane, sid, 6)
    async with admin.socket(sid, since_seq=4) as (ws, subscribed):
        assert _seqs(subscribed) == [5, 6] and subscribed["last_seq"] == 6
        assert subscribed["reset"] is False  # the client keeps what it has
        await _append(plane, sid, 1)
        assert (await ws.until(_is_event))["event"]["seq"] == 7
    async with admin.socket(sid, since_seq=7) as (_, subscribed):
        assert _seqs(subscribed) == [] and subscribed["last_seq"] == 7
    # A seq the log never reached is not resumed from (it would hide events up to it).
    async with admin.socket(sid, since_seq=99) as (ws, subscribed):
        assert subscribed["reset"] is True
        assert _seqs(subscribed) == list(range(1, 8)) and subscribed["last_seq"] == 7
        await _append(plane, sid, 1)
        assert (await ws.until(_is_event))["event"]["seq"] == 8


async def test_a_join_during_a_burst_of_appends_misses_and_repeats_nothing(
    api: InApp, plane: ControlPlane
) -> None:
    """The socket subscribes to the bus before it reads the log: whatever is appended while it
    joins comes once, either in the snapshot or as a live event."""
    admin = api.admin()
    sid = await _session(plane, admin.user)
    await _append(plane, sid, 5)
    burst = asyncio.create_task(_append(plane, sid, 40))
    async with admin.socket(sid) as (ws, subscribed):
        seen = _seqs(subscribed)
        await burst
        while not seen or seen[-1] < 45:
            seen.append((await ws.until(_is_event))["event"]["seq"])
    assert seen == list(range(1, 46))


async def test_history_pages_walk_back_to_the_first_event(api: InApp, plane: ControlPlane) -> None:
    admin = api.admin()
    sid = await _session(plane, admin.user)
    await _append(plane, sid, 25)
    async with admin.socket(sid, since_seq=25) as (ws, _):
        pages: list[list[int]] = []
        before: int | None = None
        while True:
            message: dict[str, Any] = {"type": "history", "limit": 10}
            if before is not None:
                message["before_seq"] = before
            await ws.send(message)
            page = await ws.reply()
            assert page["type"] == "history-page"
            pages.append(_seqs(page))
            if not page["has_more"]:
                break
            before = pages[-1][0]
    assert pages == [list(range(16, 26)), list(range(6, 16)), list(range(1, 6))]


async def test_an_ephemeral_event_carries_the_last_durable_seq_and_moves_nothing(
    api: InApp, plane: ControlPlane
) -> None:
    admin = api.admin()
    sid = await _session(plane, admin.user)
    await _append(plane, sid, 2)
    async with admin.socket(sid) as (ws, _):
        await plane.events.append(AgentTextDelta(session_id=sid, part_id="p", delta="hel"))
        delta = (await ws.until(_is_event))["event"]
        assert (delta["type"], delta["seq"], delta["delta"]) == ("agent-text-delta", 2, "hel")
        await _append(plane, sid, 1)
        assert (await ws.until(_is_event))["event"]["seq"] == 3
    assert [e.seq for e in await plane.store.events.after(sid, 0, 100)] == [1, 2, 3]


async def test_malformed_frames_get_error_frames_and_the_socket_stays(
    api: InApp, plane: ControlPlane
) -> None:
    admin = api.admin()
    sid = await _session(plane, admin.user)
    async with admin.socket(sid) as (ws, _):
        for bad in ({"type": "dance"}, {"type": "history", "limit": 0}, {"no": "type"}):
            await ws.send(bad)
            answer = await ws.reply()
            assert (answer["type"], answer["code"]) == ("error", "invalid_input"), answer
            assert answer["hint"]
        await ws.send_text("not json")
        assert (await ws.reply())["code"] == "invalid_input"
        await ws.send({"type": "subscribe", "token": await admin.ws_token(sid)})
        again = await ws.reply()
        assert again["code"] == "invalid_input" and "Already subscribed" in again["message"]
        await ws.send({"type": "ping"})
        assert await ws.reply() == {"type": "pong"}


async def test_before_the_subscribe_only_ping_and_subscribe_are_taken(
    api: InApp, plane: ControlPlane
) -> None:
    admin = api.admin()
    sid = await _session(plane, admin.user)
    async with api.connect(sid) as ws:
        await ws.send({"type": "ping"})
        assert await ws.reply() == {"type": "pong"}
        await ws.send({"type": "prompt", "content": "hi"})
        assert (await ws.reply())["message"] == "The first message must be subscribe"
        await ws.send({"type": "subscribe", "token": 42})
        assert (await ws.reply())["code"] == "invalid_input"
        await ws.send({"type": "subscribe", "token": await admin.ws_token(sid)})
        assert (await ws.reply())["type"] == "subscribed"


async def _closed_with(caller: Caller, path_session: str, token: str) -> int:
    async with caller.app.connect(path_session) as ws:
        await ws.send({"type": "subscribe", "token": token})
        return await ws.close_code()


async def test_close_codes_for_tokens_and_sessions(api: InApp, plane: ControlPlane) -> None:
    admin = api.admin()
    mallory = await api.member("mallory")
    ours, other = await _session(plane, admin.user), await _session(plane, admin.user)
    token = await admin.ws_token(ours)
    assert await _closed_with(admin, ours, "forged") == CLOSE_AUTH
    # A token names its session: it opens no other one.
    assert await _closed_with(admin, other, token) == CLOSE_AUTH
    # A member's token for their own session, replayed on the admin's: bound to its session.
    theirs = await _session(plane, mallory.user)
    assert await _closed_with(mallory, ours, await mallory.ws_token(theirs)) == CLOSE_AUTH
    # A valid token whose user may no longer see the session: not found, the answer a session
    # that does not exist gets.
    boss_user = await plane.store.users.create(name="boss", email="b@example.com", role="admin")
    boss = Caller(api, boss_user, await plane.store.users.create_token(boss_user.id, "boss"))
    boss_token = await boss.ws_token(ours)
    await plane.store.users.set_role(boss_user.id, "member")
    assert await _closed_with(boss, ours, boss_token) == CLOSE_NOT_FOUND
    # Revoking the API token the WebSocket token was minted from voids it.
    assert (await admin.call("POST", "/auth/logout")).status_code == 204
    assert await _closed_with(admin, ours, token) == CLOSE_AUTH


async def test_no_subscribe_in_time_closes_with_4008(
    api: InApp, plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_module, "AUTH_TIMEOUT_S", 0.2)
    sid = await _session(plane, api.admin().user)
    async with api.connect(sid) as ws:
        assert await ws.close_code(timeout_s=5) == CLOSE_AUTH_TIMEOUT


@pytest.mark.parametrize("batch", [True, False])
async def test_frames_that_wait_together_go_out_as_one_batch_to_a_client_that_reads_them(
    api: InApp, plane: ControlPlane, batch: bool
) -> None:
    """A burst published in one go waits in the client's queue together: a client that said
    ``batch`` gets it in ``batch`` messages, every frame once and in order; any other client
    gets one message per frame, as before."""
    admin = api.admin()
    sid = await _session(plane, admin.user)
    async with admin.socket(sid, batch=batch) as (ws, _):
        for i in range(30):  # no await yields to the loop in between on the in-process bus
            await plane.events.publish(AgentTextDelta(session_id=sid, part_id="p", delta=f"{i}"))
        got = [(await ws.until(_is_event))["event"]["delta"] for _ in range(30)]
        assert got == [f"{i}" for i in range(30)]
        await ws.send({"type": "ping"})
        assert await ws.reply() == {"type": "pong"}
    assert (ws.batches > 0) is batch


def test_a_batch_keeps_the_order_and_its_limits() -> None:
    texts = [f'{{"type":"event","n":{i}}}' for i in range(ws_module.BATCH_MAX_FRAMES + 3)]
    assert ws_module.batched(texts[:1]) == texts[:1]  # one frame alone is sent as it is
    messages = ws_module.batched(texts)
    assert len(messages) == 2
    flat = [f for m in messages for f in json.loads(m)["frames"]]
    assert flat == [json.loads(t) for t in texts]
    big = [f'"{"x" * (ws_module.BATCH_MAX_CHARS // 3)}"'] * 4  # two of them fill a message
    sent = ws_module.batched(big)
    assert [len(json.loads(m)["frames"]) for m in sent] == [2, 2]
    assert all(len(m) <= ws_module.BATCH_MAX_CHARS + 64 for m in sent)


async def test_a_batch_client_gets_at_most_one_message_per_interval(
    api: InApp, plane: ControlPlane
) -> None:
    """The first frame goes out at once; frames that come within the interval after it wait
    and go out together, even when each came on its own."""
    plane.settings.sessions.ws_batch_interval_ms = 300
    admin = api.admin()
    sid = await _session(plane, admin.user)
    async with admin.socket(sid, batch=True) as (ws, _):

        async def delta(text: str) -> None:
            await plane.events.publish(AgentTextDelta(session_id=sid, part_id="p", delta=text))

        await asyncio.sleep(0.4)  # what the join sent (presence) and its interval are over
        batches = ws.batches
        await delta("first")
        assert (await ws.until(_is_event))["event"]["delta"] == "first"
        assert ws.batches == batches  # alone, at once
        for text in ("a", "b", "c"):
            await delta(text)
            await asyncio.sleep(0.02)  # each on its own, well within the interval
        got = [(await ws.until(_is_event))["event"]["delta"] for _ in range(3)]
        assert got == ["a", "b", "c"] and ws.batches == batches + 1
