"""Forking a session at one of its events: the conversation up to it and the commit at it.

A fork is a new session (the forker's) on the source's repo and base branch whose agent history
is the source's up to the event, copied, and whose own branch starts at the newest commit the
source had pushed at or before the event. Its first prompt continues from there.

Where to cut the conversation. Each stored message records the prompt whose run wrote it
(``conversation_messages.prompt_id``), and the events say how far each prompt had got: the
prompts finished by the event give all their messages; the prompt running at the event gives
its messages up to its newest response or tool result at or before it. A response is found by
its step (``agent-text`` part ids and ``usage`` carry it: the n-th response of a prompt is step
n), a tool call by its id (the model's ``tool_call_id``). A cut never leaves a tool call
unanswered, which providers refuse: a call without a result by the event is answered with
``FORKED_TOOL_RESULT``.

Messages stored before prompts were recorded (migration 0020) have none: such a session forks
before its first prompt, or at the end of its last prompt from before, or later; inside those
prompts is ``fork_point_unknown``. A fork's own inherited messages have none either, and are
always its history's start.

The commit: the newest ``git-push`` (or ``git-commit``) at or before the event whose commit the
mirror has (pushed through the git proxy, so the origin has it). With none, the commit the
session started from: where its first pushed commit leaves its base branch (their merge base),
else the base branch's head. A fork inside a prompt starts at the commit before that prompt's
end: what the prompt changed after its last push is in the conversation, not the workspace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
    ForkPoint,
    GitCommit,
    GitPush,
    PromptFinished,
    PromptStarted,
    ToolCall,
    ToolResult,
    Usage,
)
from openinspect.domain.models import Session
from openinspect.errors import ForkPointInvalid, ForkPointUnknown, GitError
from openinspect.sessions.git import commit_of, git
from openinspect.store import Store

FORKED_TOOL_RESULT = (
    "[openinspect] This session was forked from another one at this point: this tool call did "
    "not run in it."
)
EVENT_TYPES = (
    "prompt-started",
    "prompt-finished",
    "agent-text",
    "agent-thinking",
    "usage",
    "tool-call",
    "tool-result",
    "git-commit",
    "git-push",
)
"""The events that say where a session's prompts, responses, tool calls and commits are."""
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


@dataclass(frozen=True)
class ForkStart:
    """What a fork is made from: where (``point``), its history and its commit."""

    point: ForkPoint
    conversation: tuple[str, ...]
    commit: str


async def check_fork_point(store: Store, source: Session, at_seq: int) -> None:
    """Refuse (``ForkPointInvalid``) an event ``source`` does not have, before any work."""
    last = await store.events.last_seq(source.id)
    if not 1 <= at_seq <= last:
        raise ForkPointInvalid(
            f"Session {source.id} has events 1 to {last}; there is no event {at_seq} to fork at",
            hint="Give the seq of one of its events (the timeline shows them)",
        )


async def plan_fork(store: Store, mirror: Path, source: Session, at_seq: int) -> ForkStart:
    """The history and commit of ``source`` at its event ``at_seq``. ``mirror``: the source
    repo's bare mirror, freshly fetched. Raises ``ForkPointInvalid`` for an event the session
    does not have and ``ForkPointUnknown`` inside a prompt from before prompts were recorded."""
    await check_fork_point(store, source, at_seq)
    events = await store.events.of_types(source.id, EVENT_TYPES)
    rows = await store.sessions.load_labelled_conversation(source.id)
    history = cut_conversation(rows, events, at_seq, inherited=source.forked_from_id is not None)
    commit = await commit_at(mirror, events, at_seq, source.base_branch)
    return ForkStart(ForkPoint(session_id=source.id, seq=at_seq), tuple(history), commit)


def fork_title(source_title: str, limit: int) -> str:
    """A fork's title when none is given: the source's, marked."""
    title = f"Fork of {source_title}"
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


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
    messages = decode_messages(kept)
    if current is not None and running:
        messages += _partial(decode_messages(running), [e for e in upto if e.prompt_id == current])
    return [encode_message(m) for m in _answer_dangling(messages)]


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


async def commit_at(mirror: Path, events: Sequence[Event], at_seq: int, base_branch: str) -> str:
    """The commit a fork at ``at_seq`` starts from (see the module docstring)."""
    commits = [
        e.sha
        for e in events
        if isinstance(e, GitPush | GitCommit) and _SHA.fullmatch(e.sha) is not None
    ]
    upto = [e.sha for e in events if isinstance(e, GitPush | GitCommit) and e.seq <= at_seq]
    for sha in reversed([s for s in upto if s in commits]):
        if await commit_of(mirror, sha) is not None:
            return sha
    base = await commit_of(mirror, f"refs/heads/{base_branch}")
    if base is None:
        raise GitError(
            f"The base branch {base_branch!r} is no longer in the repo",
            hint="A fork starts from its source's base branch when nothing was pushed by then",
        )
    for sha in commits:  # the first pushed commit the mirror has tells where the session began
        if await commit_of(mirror, sha) is not None:
            try:
                found = (await git("merge-base", sha, base, cwd=mirror)).strip()
            except GitError:
                break
            if _SHA.fullmatch(found):
                return found
            break
    return base
