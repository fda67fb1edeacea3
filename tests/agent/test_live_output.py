"""Live command output is coalesced and capped: a command printing fast sends few deltas, at
most the session's rate, newest output first, saying how much it left out; never out of order."""

from __future__ import annotations

import asyncio

from openinspect.agent.live_output import LiveOutput, RateBudget
from openinspect.domain.events import TOOL_OUTPUT_DELTA_MAX_CHARS, Event, ToolOutputDelta


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def live(sent: list[ToolOutputDelta], budget: RateBudget, interval_s: float = 0.05) -> LiveOutput:
    async def publish(event: Event) -> None:
        assert isinstance(event, ToolOutputDelta)
        await asyncio.sleep(0.001)  # a bus that takes a moment: order must hold anyway
        sent.append(event)

    return LiveOutput(
        publish,
        session_id="ses_1",
        prompt_id="prm_1",
        call_id="call_1",
        interval_s=interval_s,
        budget=budget,
    )


async def test_the_first_chunk_goes_at_once_and_a_burst_is_coalesced() -> None:
    sent: list[ToolOutputDelta] = []
    out = live(sent, RateBudget(1_000_000))
    out.add("first\n")
    await asyncio.sleep(0.01)
    assert [d.data for d in sent] == ["first\n"]
    for i in range(1000):
        out.add(f"{i}\n")
    await asyncio.sleep(0.12)
    assert 2 <= len(sent) <= 3  # one more per interval, not one per chunk
    await out.close(flush=True)
    assert "".join(d.data for d in sent) == "first\n" + "".join(f"{i}\n" for i in range(1000))
    assert [d.index for d in sent] == list(range(len(sent)))
    out.add("after close")
    await asyncio.sleep(0.06)
    assert "after close" not in "".join(d.data for d in sent)


async def test_a_flood_is_capped_per_delta_and_per_second_and_says_what_it_left_out() -> None:
    sent: list[ToolOutputDelta] = []
    clock = Clock()
    budget = RateBudget(20_000, clock=clock)
    out = live(sent, budget)
    flood = "".join(f"line {i:06}\n" for i in range(10_000))  # 120,000 characters
    out.add(flood)
    await asyncio.sleep(0.01)
    [first] = sent
    assert len(first.data) == TOOL_OUTPUT_DELTA_MAX_CHARS  # the newest part of what arrived
    assert flood.endswith(first.data)
    assert first.skipped_chars == len(flood) - len(first.data)
    # The budget is spent for this second (20,000 - 16,384 left): the next window is cut to it.
    out.add("x" * 10_000)
    await asyncio.sleep(0.08)
    assert len(sent[1].data) == 20_000 - TOOL_OUTPUT_DELTA_MAX_CHARS
    assert sent[1].skipped_chars == 10_000 - len(sent[1].data)
    # Nothing left: a window sends nothing, and the next delta counts what it missed.
    out.add("y" * 500)
    await asyncio.sleep(0.08)
    assert len(sent) == 2
    clock.now += 1.0
    out.add("z" * 100)
    await out.close(flush=True)
    assert sent[2].data == "z" * 100 and sent[2].skipped_chars == 500
    assert [d.index for d in sent] == [0, 1, 2]


async def test_a_stopped_command_sends_nothing_more() -> None:
    sent: list[ToolOutputDelta] = []
    out = live(sent, RateBudget(1_000_000), interval_s=0.05)
    out.add("a")
    await asyncio.sleep(0.01)
    out.add("b")
    await out.close(flush=False)
    await asyncio.sleep(0.08)
    assert [d.data for d in sent] == ["a"]
