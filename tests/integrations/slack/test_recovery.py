"""A delivery stored but not handled (the server died after the acknowledgement) is handled by
the recovery pass once it is a minute old, once."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import sqlalchemy as sa

from openinspect.domain.events import utcnow
from openinspect.store.tables import slack_inbox
from tests.integrations.slack.conftest import BOT, TEAM, SlackWorld


async def test_a_pending_row_left_by_a_crash_is_handled_by_recovery(world: SlackWorld) -> None:
    store, inbound = world.plane.store, world.plane.slack_inbound
    assert inbound is not None
    ts = f"{int(time.time())}.000900"
    world.fake.add_channel("C5", name="ops")
    callback = {
        "type": "event_callback",
        "team_id": TEAM,
        "event_id": "EvCRASH1",
        "event": {
            "type": "app_mention",
            "user": "U1",
            "text": f"<@{BOT}> recover me",
            "ts": ts,
            "channel": "C5",
        },
    }
    row = await store.slack_inbox.accept(
        key=f"event:{TEAM}:EvCRASH1", msg_key=None, kind="event", payload=json.dumps(callback)
    )
    assert row is not None
    assert await inbound.recover() == 0  # too young: its own handler may still be at it
    async with store.engine.begin() as conn:
        await conn.execute(slack_inbox.update().values(received_at=utcnow() - timedelta(minutes=2)))
    assert await inbound.recover() == 1
    session = await world.thread_session("C5", ts)
    assert [p.content for p in await world.prompts(session.id, 1)] == ["recover me"]
    done = await store.slack_inbox.by_key(f"event:{TEAM}:EvCRASH1")
    assert done is not None and (done.status, done.attempts) == ("done", 1)
    async with store.engine.begin() as conn:
        await conn.execute(sa.update(slack_inbox).values(handled_at=utcnow() - timedelta(hours=1)))
    assert await inbound.recover() == 0  # handled rows are never taken again
