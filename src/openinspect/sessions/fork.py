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
end: what the prompt changed after its last push is in the conversation, not the workspace;
the fork's agent is told so at the head of its first prompt (``fork_note``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from openinspect.domain.events import Event, ForkPoint, GitCommit, GitPush
from openinspect.domain.models import FINISHED_PROMPT_STATUSES, Session
from openinspect.errors import ForkPointInvalid, GitError
from openinspect.sessions.git import commit_of, git
from openinspect.store import Store

FORK_NOTE = (
    "[openinspect] This session is a fork of session {source} at its event {seq}: the "
    "conversation above is that session's up to there. The workspace is a new branch, {branch}, "
    "at {commit}, the newest commit pushed by then; changes the conversation made after that "
    "commit are not in it."
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
    repo's bare mirror, freshly fetched; pydantic-ai loaded (``ModelRegistry.loaded``). Raises
    ``ForkPointInvalid`` for an event the session does not have and ``ForkPointUnknown``
    inside a prompt from before prompts were recorded."""
    await check_fork_point(store, source, at_seq)
    # pydantic-ai's messages: the caller awaited ``ModelRegistry.loaded`` (see there).
    from openinspect.sessions.fork_history import cut_conversation

    events = await store.events.of_types(source.id, EVENT_TYPES)
    rows = await store.sessions.load_labelled_conversation(source.id)
    history = cut_conversation(rows, events, at_seq, inherited=source.forked_from_id is not None)
    commit = await commit_at(mirror, events, at_seq, source.base_branch)
    return ForkStart(ForkPoint(session_id=source.id, seq=at_seq), tuple(history), commit)


async def fork_note(store: Store, session: Session) -> str | None:
    """What a fork's agent is told at the head of its first prompt (until one has ended): where
    its history and its workspace come from, which may differ inside a prompt. None for a
    session that is not a fork, or once a prompt ended."""
    if session.forked_from_id is None:
        return None
    if await store.prompts.for_session(session.id, FINISHED_PROMPT_STATUSES):
        return None
    head = await store.branches.head(session.id, session.branch)
    return FORK_NOTE.format(
        source=session.forked_from_id,
        seq=session.forked_from_seq,
        branch=session.branch,
        commit=head[:12] if head else "the base branch",
    )


def fork_title(source_title: str, limit: int) -> str:
    """A fork's title when none is given: the source's, marked."""
    title = f"Fork of {source_title}"
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


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
