"""The ``batch`` option of the session WebSocket's subscribe: a client may only say true or
false (anything else is refused before the subscribe counts), and what it asks for never
makes a message bigger than the batch limit allows, however large and many the frames."""

from __future__ import annotations

import json

import pytest

from openinspect.api import ws as ws_module
from openinspect.controlplane import ControlPlane
from openinspect.domain.events import AgentTextDelta
from openinspect.domain.ids import new_id
from openinspect.testing.asgi import InApp
from openinspect.testing.records import session_record


@pytest.mark.parametrize("bad", ["yes", 1, {}, [True], None])
async def test_a_batch_that_is_not_a_boolean_is_refused_and_the_subscribe_does_not_count(
    api: InApp, plane: ControlPlane, bad: object
) -> None:
    admin = api.admin()
    sid = new_id("ses")
    await plane.store.sessions.create(session_record(sid, admin.user.id))
    token = await admin.ws_token(sid)
    async with api.connect(sid) as ws:
        await ws.send({"type": "subscribe", "token": token, "batch": bad})
        refused = await ws.reply()
        assert (refused["type"], refused["code"]) == ("error", "invalid_input")
        await ws.send({"type": "subscribe", "token": token, "batch": True})
        assert (await ws.reply())["type"] == "subscribed"


async def test_a_burst_of_large_frames_stays_within_the_batch_limit_per_message(
    api: InApp, plane: ControlPlane
) -> None:
    admin = api.admin()
    sid = new_id("ses")
    await plane.store.sessions.create(session_record(sid, admin.user.id))
    big = "x" * (ws_module.BATCH_MAX_CHARS // 4)
    async with admin.socket(sid, batch=True) as (sock, _):
        for _ in range(12):  # about three messages' worth, queued together
            await plane.events.publish(AgentTextDelta(session_id=sid, part_id="p", delta=big))
        sizes, frames = [], 0
        while frames < 12:
            raw = await sock.ws.receive_text()
            message = json.loads(raw)
            sizes.append(len(raw))
            got = message["frames"] if message["type"] == "batch" else [message]
            frames += sum(1 for f in got if f["type"] == "event")
    assert max(sizes) <= ws_module.BATCH_MAX_CHARS + 1024
