"""Domain records: sessions, prompts, participants, users, repos. Pure data, no I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from openinspect.domain.ids import session_branch

SessionStatus = Literal["created", "active", "idle", "archived", "failed"]
PromptStatus = Literal[
    "queued", "running", "success", "error", "stopped", "cancelled", "interrupted"
]
SandboxStatus = Literal[
    "none", "warming", "booting", "ready", "snapshotting", "stopped", "lost", "failed"
]
Role = Literal["admin", "member"]
SessionOrigin = Literal[
    "web", "cli", "api", "slack", "linear", "github", "schedule", "webhook", "sentry", "parent"
]
"""The door a session was started through. A client of the REST API may claim only
``CLIENT_ORIGINS``; the others are set by the server's own integrations."""
CLIENT_ORIGINS: tuple[SessionOrigin, ...] = ("web", "cli", "api")
ORIGIN_REF_MAX_CHARS = 200
"""The longest external reference (a Slack thread, a Linear issue, an automation id)."""
UNTITLED_SESSION = "Untitled session"
"""The title of a session created without one, until its first prompt names it."""

UNFINISHED_PROMPT_STATUSES: tuple[PromptStatus, ...] = ("queued", "running")
FINISHED_PROMPT_STATUSES: tuple[PromptStatus, ...] = (
    "success",
    "error",
    "stopped",
    "cancelled",
    "interrupted",
)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class User(_Record):
    id: str
    name: str
    email: str
    git_name: str
    git_email: str
    role: Role
    created_at: datetime


class Author(_Record):
    """Who asked for a prompt, as shown to people and written into commits."""

    id: str
    name: str
    email: str

    @classmethod
    def of(cls, user: User) -> Author:
        return cls(id=user.id, name=user.git_name, email=user.git_email)


class Repo(_Record):
    id: str
    name: str
    url: str
    default_branch: str
    created_at: datetime


class Session(_Record):
    id: str
    title: str
    repo_url: str
    repo_id: str | None
    base_branch: str
    branch: str
    model: str
    effort: str | None
    status: SessionStatus
    sandbox_status: SandboxStatus
    creator_id: str
    parent_id: str | None
    total_cost_usd: float
    last_seq: int
    created_at: datetime
    updated_at: datetime
    origin: SessionOrigin = "api"
    """The door it was started through; ``creator_id`` is who started it."""
    origin_ref: str | None = None
    """What outside started it, when something did: a Slack thread, a Linear issue, an
    automation (set by the integration, never by a REST client)."""
    forked_from_id: str | None = None
    """The session this one was forked from (``sessions/fork.py``), if it was."""
    forked_from_seq: int | None = None
    """The event of ``forked_from_id`` it was forked at."""

    @property
    def works_on_existing_branch(self) -> bool:
        """Whether ``branch`` is an existing branch the session was given (a pull request's
        head: ``StartSession.work_branch``) rather than its own ``openinspect/<id>``. Such a
        branch is only fast-forwarded, and no pull request is opened for it."""
        return self.branch != session_branch(self.id)


class Prompt(_Record):
    id: str
    session_id: str
    author: Author
    content: str
    model: str | None
    effort: str | None
    client_request_id: str | None
    status: PromptStatus
    error_code: str | None
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class Participant(_Record):
    user_id: str
    name: str
    role: Literal["owner", "member"]
    presence: Literal["active", "idle", "away"]


PullRequestState = Literal["open", "closed", "merged"]
OpenedAs = Literal["user", "app"]


class PullRequestRecord(_Record):
    """A pull request a session opened; ``opened_as`` says whose token opened it."""

    id: str
    session_id: str
    repo: str
    number: int
    url: str
    branch: str
    base: str
    title: str
    state: PullRequestState
    draft: bool
    opened_as: OpenedAs
    author_login: str | None
    created_at: datetime
    updated_at: datetime
