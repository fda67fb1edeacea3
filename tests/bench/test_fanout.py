"""The fan-out bench offers events at a fixed rate, whatever the pace of whoever takes them,
and sums up what clients received."""

from __future__ import annotations

import asyncio
import json

from bench.common import fanout_event, offered


async def test_events_are_offered_at_the_rate_not_at_the_receivers_pace() -> None:
    loop = asyncio.get_running_loop()
    sent: list[tuple[float, int]] = []
    started = loop.time()

    async def slow_send(seqs: range) -> None:
        sent.extend((loop.time() - started, seq) for seq in seqs)
        await asyncio.sleep(0.02)  # a receiver slower than the rate: the offer keeps the clock

    took = await offered(500, 100, slow_send)
    assert [seq for _, seq in sent] == list(range(1, 101))
    assert 0.19 <= took < 1.5  # 100 at 500/s: 0.2 s, not 100 x 20 ms = 2 s
    for at, seq in sent:
        assert at >= (seq - 1) / 500 - 0.002  # none before it is due


async def test_a_fast_receiver_does_not_speed_the_offer_up() -> None:
    got: list[int] = []

    async def send(seqs: range) -> None:
        got.extend(seqs)

    took = await offered(200, 40, send)
    assert got == list(range(1, 41)) and took >= 0.19  # never faster than the rate


def test_events_have_the_size_asked_for() -> None:
    event = fanout_event(7, 400)
    assert event["seq"] == 7 and event["type"] == "agent-text"
    assert len(json.dumps({"type": "event", "event": event})) == 400
