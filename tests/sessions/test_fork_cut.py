"""Where a fork cuts a stored conversation, from the events alone: parallel tool calls half
answered by the fork point, a cut at a response with calls, prompts from before messages were
labelled (forkable only at their boundaries), and a fork's own inherited history."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from openinspect.agent.conversation import decode_messages, encode_message
from openinspect.domain.events import (
    AgentText,
    Event,
    PromptFinished,
    PromptStarted,
    ToolCall,
    ToolResult,
    Usage,
)
from openinspect.errors import ForkPointUnknown
from openinspect.sessions.fork_history import FORKED_TOOL_RESULT, cut_conversation

S = "ses_1"


def _usage(seq: int, prompt: str, step: int) -> Usage:
    return Usage(
        session_id=S,
        seq=seq,
        prompt_id=prompt,
        model="m",
        input_tokens=1,
        output_tokens=1,
        cost_usd=0.0,
        step=step,
    )


EVENTS: list[Event] = [
    PromptStarted(session_id=S, seq=2, prompt_id="p1", model="m", effort=None),
    AgentText(session_id=S, seq=3, prompt_id="p1", part_id="p1.0.0", text="r1"),
    _usage(4, "p1", 0),
    PromptFinished(session_id=S, seq=5, prompt_id="p1", status="success"),
    PromptStarted(session_id=S, seq=6, prompt_id="p2", model="m", effort=None),
    _usage(7, "p2", 0),
    ToolCall(session_id=S, seq=8, prompt_id="p2", call_id="a", tool="bash", args={}),
    ToolCall(session_id=S, seq=9, prompt_id="p2", call_id="b", tool="bash", args={}),
    ToolResult(session_id=S, seq=10, prompt_id="p2", call_id="a", tool="bash", output="out-a"),
    ToolResult(session_id=S, seq=11, prompt_id="p2", call_id="b", tool="bash", output="out-b"),
    AgentText(session_id=S, seq=12, prompt_id="p2", part_id="p2.1.0", text="r2"),
    _usage(13, "p2", 1),
    PromptFinished(session_id=S, seq=14, prompt_id="p2", status="success"),
]
P1: list[ModelMessage] = [
    ModelRequest(parts=[UserPromptPart(content="one")]),
    ModelResponse(parts=[TextPart(content="r1")]),
]
P2: list[ModelMessage] = [
    ModelRequest(parts=[UserPromptPart(content="two")]),
    ModelResponse(
        parts=[
            ToolCallPart(tool_name="bash", args={}, tool_call_id="a"),
            ToolCallPart(tool_name="bash", args={}, tool_call_id="b"),
        ]
    ),
    ModelRequest(
        parts=[
            ToolReturnPart(tool_name="bash", content="out-a", tool_call_id="a"),
            ToolReturnPart(tool_name="bash", content="out-b", tool_call_id="b"),
        ]
    ),
    ModelResponse(parts=[TextPart(content="r2")]),
]


def _rows(p1: str | None, p2: str | None) -> list[tuple[str, str | None]]:
    return [(encode_message(m), p1) for m in P1] + [(encode_message(m), p2) for m in P2]


def _cut(rows: list[tuple[str, str | None]], at: int, inherited: bool = False) -> list[Any]:
    return decode_messages(cut_conversation(rows, EVENTS, at, inherited=inherited))


def _answers(message: ModelMessage) -> dict[str, Any]:
    assert isinstance(message, ModelRequest)
    return {p.tool_call_id: p.content for p in message.parts if isinstance(p, ToolReturnPart)}


def test_prompt_boundaries_and_responses() -> None:
    rows = _rows("p1", "p2")
    assert _cut(rows, 1) == []  # before the first prompt
    assert _cut(rows, 2) == []  # started, no response yet
    assert _cut(rows, 3) == P1  # at the first answer's text
    assert _cut(rows, 5) == P1 == _cut(rows, 6)  # its end, the next one's start
    assert _cut(rows, 14) == P1 + P2
    assert _cut(rows, 12) == P1 + P2  # the second prompt's last text


def test_half_answered_parallel_calls_get_the_fork_note() -> None:
    rows = _rows("p1", "p2")
    at_first_result = _cut(rows, 10)
    assert at_first_result[:-1] == P1 + P2[:2]
    assert _answers(at_first_result[-1]) == {"a": "out-a", "b": FORKED_TOOL_RESULT}
    both = _cut(rows, 11)
    assert _answers(both[-1]) == {"a": "out-a", "b": "out-b"}
    # At the response with the calls (its usage), or at a call: every call answered by the note.
    for at in (7, 8, 9):
        cut = _cut(rows, at)
        assert cut[:-1] == P1 + P2[:2]
        assert _answers(cut[-1]) == {"a": FORKED_TOOL_RESULT, "b": FORKED_TOOL_RESULT}


def test_unlabelled_messages_fork_only_at_their_prompts_boundaries() -> None:
    legacy = _rows(None, None)  # both prompts from before messages were labelled
    assert _cut(legacy, 1) == []
    assert _cut(legacy, 14) == P1 + P2
    for at in (3, 5, 10):
        with pytest.raises(ForkPointUnknown) as refused:
            _cut(legacy, at)
        assert "event 14" in (refused.value.hint or "")
    mixed = _rows(None, "p2")  # the first from before, the second after
    assert _cut(mixed, 5) == P1
    assert _answers(_cut(mixed, 10)[-1])["a"] == "out-a"
    with pytest.raises(ForkPointUnknown):
        _cut(mixed, 3)


def test_a_forks_inherited_history_is_always_its_start() -> None:
    inherited = [(encode_message(m), None) for m in P1]
    assert _cut(inherited, 1, inherited=True) == P1


def test_a_prompt_stopped_on_its_calls_is_answered_at_its_end() -> None:
    """A prompt stopped before its tool ran ends its stored history on the call: a fork at its
    end answers the call (its rows otherwise kept as stored)."""
    stopped = [*P1, P2[0], P2[1]]
    rows = [(encode_message(m), "p1") for m in stopped]
    cut = cut_conversation(rows, EVENTS, 5, inherited=False)
    assert cut[: len(rows)] == [r for r, _ in rows]
    messages = decode_messages(cut)
    assert messages[:-1] == stopped
    assert _answers(messages[-1]) == {"a": FORKED_TOOL_RESULT, "b": FORKED_TOOL_RESULT}
