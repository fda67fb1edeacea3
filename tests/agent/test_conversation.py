"""The stored conversation: a model step writes its new messages only, a rewritten message
rewrites from there, and a run cut short is answered on the next load."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from openinspect.agent.conversation import (
    STOPPED_TOOL_RESULT,
    Conversation,
    decode_messages,
    encode_message,
)
from openinspect.agent.runner import run_prompt
from openinspect.settings import AgentSettings
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.agent.test_runner import RUN, MemoryHost, registry, tool_turns


class Table:
    """The rows a store would hold, and what each write sent."""

    def __init__(self) -> None:
        self.rows: list[str] = []
        self.writes: list[tuple[int, int]] = []

    async def write(self, start: int, rows: Sequence[str]) -> None:
        assert 0 <= start <= len(self.rows)
        self.rows[start:] = rows
        self.writes.append((start, len(rows)))


def _turn(i: int) -> list[ModelMessage]:
    return [
        ModelRequest(parts=[UserPromptPart(content=f"question {i}")]),
        ModelResponse(parts=[TextPart(content=f"answer {i}")]),
    ]


async def test_each_save_writes_only_the_new_messages() -> None:
    table, conversation = Table(), Conversation()
    messages: list[ModelMessage] = []
    for i in range(5):
        messages += _turn(i)
        assert await conversation.save(messages, table.write) == 2
    assert table.writes == [(0, 2), (2, 2), (4, 2), (6, 2), (8, 2)]
    assert await conversation.save(messages, table.write) == 0  # nothing new: no write
    assert decode_messages(table.rows) == messages
    assert Conversation(table.rows).history() == messages


async def test_a_rewritten_message_is_rewritten_with_everything_after_it() -> None:
    table, conversation = Table(), Conversation()
    messages = _turn(0) + _turn(1)
    await conversation.save(messages, table.write)
    # An equal message in a new object (pydantic-ai copies what it was given) is no change.
    assert (
        conversation.changes([*messages[:2], dataclasses.replace(messages[2]), messages[3]]) is None
    )
    # A new object with other content (as when pydantic-ai merges requests) is one.
    changed = [*messages[:2], ModelRequest(parts=[UserPromptPart(content="question 1b")])]
    assert conversation.changes(changed) == (2, [encode_message(changed[2])])
    await conversation.save(changed, table.write)
    assert table.writes[-1] == (2, 1)
    assert decode_messages(table.rows) == changed  # the fourth message is gone


async def test_calls_left_unanswered_are_answered_on_load_and_stored_with_the_next_write() -> None:
    call = ToolCallPart(tool_name="glob", args={"pattern": "*"}, tool_call_id="c1")
    cut = [*_turn(0), ModelResponse(parts=[call])]
    table = Table()
    await Conversation().save(cut, table.write)
    resumed = Conversation(table.rows)
    history = resumed.history()
    assert history[:3] == cut
    answer = history[3]
    assert isinstance(answer, ModelRequest)
    assert answer.parts == [
        ToolReturnPart(
            tool_name="glob",
            content=STOPPED_TOOL_RESULT,
            tool_call_id="c1",
            timestamp=answer.parts[0].timestamp,  # type: ignore[union-attr]
        )
    ]
    await resumed.save([*history, *_turn(1)], table.write)
    assert table.writes[-1] == (3, 3)


async def test_a_long_prompt_writes_each_message_once(llm: ScriptedLLMServer) -> None:
    """N model steps write O(N) characters in total, not O(N²): each save writes the step's
    new messages, so the total written is exactly the size of what is stored."""
    totals = {}
    for steps in (10, 40):
        llm.reset({"turns": [*tool_turns(steps), {"text": "finished"}]})
        host = MemoryHost()
        outcome = await run_prompt(
            RUN, host, Conversation(), registry(llm), AgentSettings(max_steps=100)
        )
        assert outcome.status == "success", outcome.error
        assert len(host.rows) == 2 * (steps + 1)  # a request and a response per step
        assert len(host.written) == steps + 1  # one write per step
        assert sum(host.written) == sum(len(r) for r in host.rows)  # each message once
        totals[steps] = sum(host.written)
    assert totals[40] < 6 * totals[10]  # linear: 4× the steps, about 4× the writes
