"""The session event log: one discriminated union, one serializer, one format version.

The same types are stored, published on the bus and sent over the WebSocket. Every event carries
``session_id``, ``seq``, ``ts`` and ``type`` (kebab-case). Durable events get a gap-free,
per-session ``seq``; ephemeral ones (``agent-text-delta``, ``tool-output-delta``) are published but
never stored and carry the ``seq`` of the last durable event before them.

Extend the union by adding a class and listing it in ``Event``; never change a field's meaning.
Bump ``EVENT_FORMAT_VERSION`` only for a change old readers cannot ignore.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from openinspect.domain.models import (
    Author,
    PromptStatus,
    SandboxStatus,
    SessionOrigin,
    SessionStatus,
)

EVENT_FORMAT_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class ErrorInfo(BaseModel):
    code: str
    message: str
    hint: str | None = None


class _EventBase(BaseModel):
    model_config = ConfigDict(frozen=True)

    v: int = EVENT_FORMAT_VERSION
    session_id: str
    seq: int = 0
    ts: datetime = Field(default_factory=utcnow)
    prompt_id: str | None = None


class ForkPoint(BaseModel):
    """Where a forked session started: an event of another session."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    seq: int


class SessionCreated(_EventBase):
    type: Literal["session-created"] = "session-created"
    title: str
    repo_url: str
    base_branch: str
    branch: str
    model: str
    effort: str | None
    creator: Author
    origin: SessionOrigin = "api"
    forked_from: ForkPoint | None = None
    """Set when the session is a fork: its conversation and commit are the source's at ``seq``."""


class SessionUpdated(_EventBase):
    type: Literal["session-updated"] = "session-updated"
    status: SessionStatus | None = None
    title: str | None = None
    total_cost_usd: float | None = None


class PromptQueued(_EventBase):
    type: Literal["prompt-queued"] = "prompt-queued"
    author: Author
    content: str
    model: str
    effort: str | None
    client_request_id: str | None = None
    position: int


class PromptStarted(_EventBase):
    type: Literal["prompt-started"] = "prompt-started"
    model: str
    effort: str | None


class PromptFinished(_EventBase):
    type: Literal["prompt-finished"] = "prompt-finished"
    status: PromptStatus
    error: ErrorInfo | None = None
    duration_ms: int | None = None


class PromptCancelled(_EventBase):
    type: Literal["prompt-cancelled"] = "prompt-cancelled"


class AgentText(_EventBase):
    type: Literal["agent-text"] = "agent-text"
    part_id: str
    text: str


class AgentTextDelta(_EventBase):
    type: Literal["agent-text-delta"] = "agent-text-delta"
    part_id: str
    delta: str


class AgentThinking(_EventBase):
    type: Literal["agent-thinking"] = "agent-thinking"
    part_id: str
    text: str


class ToolCall(_EventBase):
    type: Literal["tool-call"] = "tool-call"
    call_id: str
    tool: str
    args: dict[str, Any]


class ToolResult(_EventBase):
    type: Literal["tool-result"] = "tool-result"
    call_id: str
    tool: str
    output: str
    is_error: bool = False
    exit_code: int | None = None
    duration_ms: int | None = None
    truncated_for_model: bool = False
    stopped: bool = False
    """The prompt was stopped while the call ran: ``output`` is what it printed until then."""


TOOL_OUTPUT_DELTA_MAX_CHARS = 16 * 1024
"""Most output one ``tool-output-delta`` carries (the newest part when more arrived)."""


class ToolOutputDelta(_EventBase):
    """Output a running command printed since the previous delta of its call (ephemeral).

    ``index`` counts the call's deltas from 0, so a client that joined mid-command knows it
    missed the start; ``skipped_chars`` is output left out just before ``data`` (throttled). The
    call's durable ``tool-result`` has the whole output (head and tail) and replaces it."""

    type: Literal["tool-output-delta"] = "tool-output-delta"
    call_id: str
    index: int = Field(ge=0)
    data: str = Field(max_length=TOOL_OUTPUT_DELTA_MAX_CHARS)
    skipped_chars: int = Field(0, ge=0)


class Usage(_EventBase):
    type: Literal["usage"] = "usage"
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    total_cost_usd: float = 0.0
    """The session's cost including this response: set by the store in the transaction that
    adds ``cost_usd`` to the session (whatever the writer put here is replaced)."""
    step: int | None = None
    """The model response's index within its prompt: with ``prompt_id`` the key that stores the
    event, and counts its cost, once however often it is re-sent."""


class SandboxStatusChanged(_EventBase):
    type: Literal["sandbox-status"] = "sandbox-status"
    status: SandboxStatus
    message: str | None = None


class SandboxLog(_EventBase):
    type: Literal["sandbox-log"] = "sandbox-log"
    source: str
    line: str


class GitCommit(_EventBase):
    type: Literal["git-commit"] = "git-commit"
    sha: str
    branch: str
    message: str
    author: Author
    files_changed: int


class GitPush(_EventBase):
    type: Literal["git-push"] = "git-push"
    sha: str
    branch: str
    remote: str


class PrOpened(_EventBase):
    type: Literal["pr-opened"] = "pr-opened"
    url: str
    number: int


PrState = Literal["open", "closed", "merged"]


class PrUpdated(_EventBase):
    """A pull request of the session changed: new title/body, or its state (from webhooks)."""

    type: Literal["pr-updated"] = "pr-updated"
    url: str
    number: int
    state: PrState


class ArtifactCreated(_EventBase):
    type: Literal["artifact-created"] = "artifact-created"
    kind: str
    url: str


class ChildSessionUpdated(_EventBase):
    type: Literal["child-session-updated"] = "child-session-updated"
    child_session_id: str
    status: SessionStatus


class WarningEvent(_EventBase):
    type: Literal["warning"] = "warning"
    code: str
    message: str


class ErrorEvent(_EventBase):
    type: Literal["error"] = "error"
    code: str
    message: str
    hint: str | None = None


NOTIFY_TEXT_MAX_CHARS = 4_000
NOTIFY_CHANNEL_MAX_CHARS = 32


class SpendLimitReached(_EventBase):
    """A spend limit is reached: the session's queue is paused (prompts stay queued; a running
    one ends with ``spend_limit``) until the limit is raised or, for a daily one, the day ends."""

    type: Literal["spend-limit-reached"] = "spend-limit-reached"
    scope: Literal["global", "repo", "automation", "user-daily"]
    key: str
    """The repo's or automation's id; ``*`` for the global and the daily limit."""
    user_id: str | None = None
    """For ``user-daily``: whose day it is."""
    spent_usd: float
    limit_usd: float
    message: str
    hint: str


class SpendLimitLifted(_EventBase):
    """The limit that paused the queue no longer holds it (raised, removed, a new day): the
    queued prompts run again."""

    type: Literal["spend-limit-lifted"] = "spend-limit-lifted"
    scope: Literal["global", "repo", "automation", "user-daily"]


class Notify(_EventBase):
    """The agent's ``notify`` tool: a message for people in Slack (the session's thread, or
    ``channel``, one of ``slack.notify_channels``), posted by the control plane, never the box."""

    type: Literal["notify"] = "notify"
    text: str = Field(max_length=NOTIFY_TEXT_MAX_CHARS)
    channel: str | None = Field(None, max_length=NOTIFY_CHANNEL_MAX_CHARS)


Event = Annotated[
    SessionCreated
    | SessionUpdated
    | PromptQueued
    | PromptStarted
    | PromptFinished
    | PromptCancelled
    | AgentText
    | AgentTextDelta
    | AgentThinking
    | ToolCall
    | ToolResult
    | ToolOutputDelta
    | Usage
    | SandboxStatusChanged
    | SandboxLog
    | GitCommit
    | GitPush
    | PrOpened
    | PrUpdated
    | ArtifactCreated
    | ChildSessionUpdated
    | WarningEvent
    | ErrorEvent
    | Notify
    | SpendLimitReached
    | SpendLimitLifted,
    Field(discriminator="type"),
]

EPHEMERAL_TYPES: frozenset[str] = frozenset({"agent-text-delta", "tool-output-delta"})

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def is_ephemeral(event: Event) -> bool:
    return event.type in EPHEMERAL_TYPES


def dump_event(event: Event) -> dict[str, Any]:
    """The one serializer: JSON-ready dict of an event."""
    return event.model_dump(mode="json")


def load_event(data: dict[str, Any] | str | bytes) -> Event:
    """Parse an event from its JSON form (a dict or text)."""
    if isinstance(data, dict):
        return event_adapter.validate_python(data)
    return event_adapter.validate_json(data)
