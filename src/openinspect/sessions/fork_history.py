"""Cutting a stored conversation at an event, for a fork (``sessions/fork.py`` says where and
why). Apart from it because it reads pydantic-ai's messages, which the server loads only after it
listens: this module is imported when a fork is made, never at start."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelRequestPart,
    ModelResponse,
    RetryPromptPart,
    ToolCallPart,
    ToolReturnPart,
)

from openinspect.agent.conversation import decode_messages, encode_message
from openinspect.domain.events import (
    AgentText,
    AgentThinking,
    Event,
    PromptFinished,
    PromptStarted,
    ToolCall,
    ToolResult,
    Usage,
)
from openinspect.errors import ForkPointUnknown

FORKED_TOOL_RESULT = (
    "[openinspect] This session was forked from another one at this point: this tool call did "
    "not run in it."
)


def cut_conversation(
    rows: Sequence[tuple[str, str | None]],
    events: Sequence[Event],
    at_seq: int,
    *,
    inherited: bool,
) -> list[str]:
    """The stored messages (with the prompt that wrote each) as they were at ``at_seq``, given
    the session's ``EVENT_TYPES`` events; ``inherited``: messages without a prompt are a fork's
    inheritance (always kept), not messages from before prompts were recorded."""
    upto = [e for e in events if e.seq <= at_seq]
    finished = {e.prompt_id for e in upto if isinstance(e, PromptFinished)}
    started = [e.prompt_id for e in upto if isinstance(e, PromptStarted)]
    current = next((p for p in reversed(started) if p not in finished), None)
    keep_unlabelled = inherited or _after_unlabelled_prompts(rows, events, at_seq)
    kept: list[str] = []
    running: list[str] = []
    for row, prompt_id in rows:
        if (prompt_id is None and keep_unlabelled) or (
            prompt_id is not None and prompt_id in finished
        ):
            kept.append(row)
        elif prompt_id is not None and prompt_id == current:
            running.append(row)
        else:
            break  # a later prompt's: the history is a prefix
    # The whole prompts' rows are kept as stored (decoding and encoding a long conversation
    # again costs more than the rest of a fork); only the running prompt's, and the last row,
    # are read.
    tail: list[ModelMessage] = []
    if current is not None and running:
        tail = _partial(decode_messages(running), [e for e in upto if e.prompt_id == current])
    if tail:
        return [*kept, *(encode_message(m) for m in _answer_dangling(tail))]
    if not kept:
        return []
    last = decode_messages(kept[-1:])
    answered = _answer_dangling(last)
    return kept if answered == last else [*kept, *(encode_message(m) for m in answered[1:])]


def _after_unlabelled_prompts(
    rows: Sequence[tuple[str, str | None]], events: Sequence[Event], at_seq: int
) -> bool:
    """Whether messages without a prompt (stored before prompts were recorded) belong at
    ``at_seq``: they are the prompts' that started before the first prompt that labelled a
    message. True when all of those had finished by ``at_seq``, False when none had started;
    in between is ``ForkPointUnknown``."""
    if all(prompt_id is not None for _, prompt_id in rows):
        return False
    labelled = {p for _, p in rows if p is not None}
    starts = [e for e in events if isinstance(e, PromptStarted)]
    first_labelled = next((e.seq for e in starts if e.prompt_id in labelled), None)
    old = {e.prompt_id for e in starts if first_labelled is None or e.seq < first_labelled}
    if not old or min(e.seq for e in starts if e.prompt_id in old) > at_seq:
        return False
    ends = {e.prompt_id: e.seq for e in events if isinstance(e, PromptFinished)}
    end = max((ends.get(p, at_seq + 1) for p in old), default=0)
    if end <= at_seq:
        return True
    raise ForkPointUnknown(
        f"This session's conversation up to event {end} was stored before openinspect recorded "
        "which prompt wrote each message, so it cannot be cut inside it",
        hint=f"Fork at event {end} (the end of that prompt) or later, or before its first prompt",
    )


def _partial(messages: list[ModelMessage], events: Sequence[Event]) -> list[ModelMessage]:
    """The running prompt's messages up to its newest response or tool result in ``events``
    (its events at or before the fork point, oldest first); none before its first response."""
    results = {e.call_id for e in events if isinstance(e, ToolResult)}
    responses = [i for i, m in enumerate(messages) if isinstance(m, ModelResponse)]
    for event in reversed(events):
        step: int | None = None
        if isinstance(event, AgentText | AgentThinking):
            step = _step_of(event.part_id)
        elif isinstance(event, Usage):
            step = event.step
        elif isinstance(event, ToolCall | ToolResult):
            found = _with_call(messages, responses, event.call_id)
            if found is not None:
                return [*messages[: found + 1], _answers(messages, found, results)]
        if step is not None and 0 <= step < len(responses):
            return messages[: responses[step] + 1]
    return []


def _step_of(part_id: str) -> int | None:
    """The step of an ``agent-text`` part id, ``<prompt id>.<step>.<index>``."""
    parts = part_id.rsplit(".", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def _with_call(messages: list[ModelMessage], responses: list[int], call_id: str) -> int | None:
    """The index of the response that made the tool call ``call_id``."""
    for i in responses:
        message = messages[i]
        assert isinstance(message, ModelResponse)
        if any(isinstance(p, ToolCallPart) and p.tool_call_id == call_id for p in message.parts):
            return i
    return None


def _answers(messages: list[ModelMessage], index: int, results: set[str]) -> ModelRequest:
    """The answers to the tool calls of the response at ``index``: the stored ones of the calls
    whose result came by the fork point, ``FORKED_TOOL_RESULT`` for the others."""
    response = messages[index]
    assert isinstance(response, ModelResponse)
    stored: dict[str, ModelRequestPart] = {}
    after = messages[index + 1] if index + 1 < len(messages) else None
    if isinstance(after, ModelRequest):
        for part in after.parts:
            if isinstance(part, ToolReturnPart | RetryPromptPart) and part.tool_call_id:
                stored[part.tool_call_id] = part
    parts: list[ModelRequestPart] = []
    for call in response.parts:
        if not isinstance(call, ToolCallPart):
            continue
        answer = stored.get(call.tool_call_id)
        if answer is not None and call.tool_call_id in results:
            parts.append(answer)
        else:
            parts.append(_stub(call))
    return ModelRequest(parts=parts)


def _stub(call: ToolCallPart) -> ToolReturnPart:
    return ToolReturnPart(
        tool_name=call.tool_name, content=FORKED_TOOL_RESULT, tool_call_id=call.tool_call_id
    )


def _answer_dangling(messages: list[ModelMessage]) -> list[ModelMessage]:
    """A history ending on a response with tool calls gets their answers (a cut at that
    response, or before a later prompt's merged request)."""
    if messages and isinstance(messages[-1], ModelResponse):
        calls = [p for p in messages[-1].parts if isinstance(p, ToolCallPart)]
        if calls:
            return [*messages, ModelRequest(parts=[_stub(c) for c in calls])]
    return messages
