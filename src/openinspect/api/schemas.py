"""Wire schemas of the REST API (separate from the domain types they are built from)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from openinspect.domain.models import (
    Author,
    Prompt,
    PullRequestRecord,
    Repo,
    Session,
    SessionOrigin,
    User,
)
from openinspect.people.roles import is_admin

NAME_MAX = 200
URL_MAX = 2048
BRANCH_MAX = 255
MODEL_MAX = 300
EFFORT_MAX = 16
# The prompt limit itself is a setting checked by the session; this only bounds the body.
CONTENT_HARD_MAX = 1_000_000
# Event sequence numbers are SQL BIGINTs: a bigger number is a client mistake (422), not an
# overflow deep in the database driver (500).
SEQ_MAX = 2**63 - 1
CLIENT_REQUEST_ID_MAX = 128
IDEMPOTENCY_KEY_MAX = 128
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _trim(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


Trimmed = BeforeValidator(_trim)
"""Strips the whitespace around a text field before its ``pattern`` is checked. A pattern's
``$`` also matches before a final newline in Python's and JSON Schema generators' regexes, but
not in pydantic's (Rust) engine, so ``"name\\n"`` would be valid by the OpenAPI document and
refused by the server; trimmed first, it is both valid and accepted."""


INTEGRATION_ONLY_FIELDS = ("work_branch", "start_ref")
"""Fields of a session start only the server's integrations set (the branch of a pull request a
fix was asked on, where a fork's fix starts): a client that sends one is refused rather than
ignored, since it asks for push rights on someone's branch. (``origin_ref`` is ignored.)"""


class SessionCreate(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _no_integration_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            claimed = [name for name in INTEGRATION_ONLY_FIELDS if name in data]
            if claimed:
                raise ValueError(f"{', '.join(claimed)}: set by the server's integrations only")
        return data

    repo: str = Field(
        min_length=1,
        max_length=URL_MAX,
        description="Registered repo name or id, a local path, or a git URL.",
    )
    base_branch: str | None = Field(
        None, max_length=BRANCH_MAX, description="Branch to start from (default: the repo's)."
    )
    model: str | None = Field(None, max_length=MODEL_MAX, description="'provider:model'.")
    effort: str | None = Field(None, max_length=EFFORT_MAX, description="Reasoning effort.")
    title: str | None = Field(None, max_length=NAME_MAX)
    prompt: str | None = Field(
        None, max_length=CONTENT_HARD_MAX, description="Optional first prompt, queued at once."
    )
    client_request_id: str | None = Field(None, min_length=1, max_length=CLIENT_REQUEST_ID_MAX)
    origin: SessionOrigin | None = Field(
        None,
        description="The client this create comes from: web, cli or api (the default). The "
        "other origins are set by the server's integrations; claiming one is refused (403 "
        "origin_not_allowed).",
    )
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
        description="Or the header Idempotency-Key. A retried create with the same key (per "
        "creator) and the same body returns the same session with 200; the same key with a "
        "different body is refused (409 idempotency_key_reused).",
    )


class SessionPatch(BaseModel):
    """A change to a session; fields left out stay as they are."""

    title: str | None = Field(
        None,
        max_length=NAME_MAX,
        description="New title: 1 to 200 characters of one-line printable text (trimmed).",
    )
    archived: bool | None = Field(
        None,
        description="Archive (true) or unarchive (false). Archiving stops the sandbox and is "
        "refused (409 session_busy) while a prompt is queued or running.",
    )


class PromptCreate(BaseModel):
    content: str = Field(max_length=CONTENT_HARD_MAX)
    model: str | None = Field(None, max_length=MODEL_MAX)
    effort: str | None = Field(None, max_length=EFFORT_MAX)
    client_request_id: str | None = Field(None, min_length=1, max_length=CLIENT_REQUEST_ID_MAX)


class RepoCreate(BaseModel):
    name: Annotated[
        str, Field(min_length=1, max_length=NAME_MAX, pattern=r"^[A-Za-z0-9._/-]+$"), Trimmed
    ]
    url: str = Field(min_length=1, max_length=URL_MAX, description="Local path or git URL.")
    default_branch: str = Field("main", min_length=1, max_length=BRANCH_MAX)


class ForkCreate(BaseModel):
    """Fork a session at one of its events (``docs/sessions.md``, Fork)."""

    at_seq: int = Field(ge=1, le=SEQ_MAX, description="The seq of the event to fork at.")
    title: str | None = Field(None, max_length=200)


class SessionOut(BaseModel):
    session: Session
    queue: list[Prompt] = []


class SessionCreated(BaseModel):
    session: Session
    prompt: Prompt | None = None


class LastPrompt(BaseModel):
    status: str
    error_code: str | None = None
    error_message: str | None = Field(
        default=None, description="The first line of the error, when the prompt failed."
    )


class DiffStat(BaseModel):
    files: int
    additions: int
    deletions: int


class PullSummary(BaseModel):
    number: int
    url: str
    state: str
    draft: bool


class SessionList(BaseModel):
    sessions: list[Session]
    creators: dict[str, Author] = Field(
        default_factory=dict, description="The sessions' creators, by user id."
    )
    last_prompts: dict[str, LastPrompt] = Field(
        default_factory=dict, description="How each session's newest prompt ended, by session id."
    )
    repo_names: dict[str, str] = Field(
        default_factory=dict, description="The registered name of each listed repo, by repo id."
    )
    diff_stats: dict[str, DiffStat] = Field(
        default_factory=dict,
        description="Each session's branch against its base, by session id, when it is known "
        "(sessions whose branch was never pushed or not yet looked at are left out).",
    )
    pulls: dict[str, PullSummary] = Field(
        default_factory=dict, description="Each session's newest pull request, by session id."
    )


class EventPage(BaseModel):
    events: list[dict[str, Any]]
    has_more: bool


class StopResult(BaseModel):
    stopped: bool


class PullRequestCreate(BaseModel):
    title: str = Field(min_length=1, max_length=256)
    body: str = Field("", max_length=60_000)
    draft: bool = False


class PullRequestList(BaseModel):
    pull_requests: list[PullRequestRecord]
    can_open: bool = Field(
        default=True,
        description="Whether this session can open a pull request at all (a GitHub repo, with "
        "GitHub configured on the server).",
    )
    cannot_open_reason: str | None = Field(
        default=None, description="Why it cannot, when it cannot."
    )


class DiffFileOut(BaseModel):
    path: str
    old_path: str | None = Field(description="The path before a rename, else null.")
    status: Literal["added", "modified", "deleted", "renamed"]
    additions: int
    deletions: int
    patch: str = Field(
        description="Unified diff hunks, from the first '@@' line, without the file header; "
        "empty for binary files."
    )
    binary: bool
    truncated: bool = Field(description="The patch was cut at the per-file or total limit.")


class SessionDiffOut(BaseModel):
    base: str = Field(description="The base branch.")
    branch: str = Field(description="The session branch.")
    base_sha: str | None = Field(description="The merge base the diff is taken from.")
    head_sha: str | None = Field(description="The session branch's tip; null until pushed.")
    files: list[DiffFileOut] = Field(description="Empty until the branch is pushed.")
    truncated: bool = Field(description="Files were left out or a patch was cut.")
    prompts_finished: int = Field(
        description="How many of the session's prompts have ended: with none, an empty diff "
        "means nothing ran yet; with some, that the branch matches its base."
    )


class WsToken(BaseModel):
    token: str
    expires_at: int
    url: str


class RepoList(BaseModel):
    repos: list[Repo]


class ModelOut(BaseModel):
    id: str
    provider: str
    label: str
    efforts: list[str]
    default_effort: str | None
    available: bool


class ModelList(BaseModel):
    default: str
    models: list[ModelOut]


class Health(BaseModel):
    status: str
    version: str
    replica: str | None = None
    """This server process's replica id (the holder of the session leases it owns); for
    admins only."""
    live_sessions: int | None = None
    """Sessions live (owned, in memory) on this replica now; for admins only."""


# Members see no server paths (DESIGN §11): a registered local repo is shown by its name only,
# and a URL without its user info (an admin may have registered one with credentials in it).
LOCAL_ORIGIN_PREFIX = "local/"


def origin_shown_to(user: User, url: str) -> str:
    """``url`` as ``user`` may see it: as it is for admins; for members without server paths
    (``local/<name>``) or credentials."""
    if is_admin(user):
        return url
    parts = urlsplit(url)
    if parts.scheme in ("http", "https", "ssh", "git") and parts.netloc:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    if url.startswith("git@") and ":" in url:
        return url
    name = PurePosixPath(url.removeprefix("file://").rstrip("/")).name.removesuffix(".git")
    return LOCAL_ORIGIN_PREFIX + (_UNSAFE_NAME.sub("-", name).strip("-.") or "repo")


def session_shown_to(user: User, session: Session) -> Session:
    return session.model_copy(update={"repo_url": origin_shown_to(user, session.repo_url)})


def repo_shown_to(user: User, repo: Repo) -> Repo:
    return repo.model_copy(update={"url": origin_shown_to(user, repo.url)})


def event_shown_to(user: User, event: dict[str, Any]) -> dict[str, Any]:
    """A dumped event as ``user`` may see it (``session-created`` names the origin)."""
    if "repo_url" in event and isinstance(event["repo_url"], str):
        return {**event, "repo_url": origin_shown_to(user, event["repo_url"])}
    return event
