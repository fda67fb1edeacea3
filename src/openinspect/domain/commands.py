"""Commands: what any door (REST, WebSocket, CLI, and later Slack, Linear, GitHub, schedules…)
asks of a session, as typed, serialisable data.

One discriminated union on ``type`` (kebab-case, like the events), so a replica that does not own
a session can forward a command over the bus and the owner parses it back with
``parse_command``. Commands carry what the caller asked for and nothing it may not decide: who
sends it and through which door are arguments of ``sessions.commands.handle``, never fields a
client fills in. Field limits are the wire limits; the deeper checks (prompt length setting,
title rules, branch names) are the handler's.

Extend the union by adding a class and listing it in ``Command``; never change a field's meaning.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from openinspect.domain.models import ORIGIN_REF_MAX_CHARS

ID_MAX = 64
REPO_MAX = 2048
BRANCH_MAX = 255
MODEL_MAX = 300
EFFORT_MAX = 16
TITLE_MAX = 200
CONTENT_MAX = 1_000_000
"""Bounds the message; the prompt limit itself is the setting ``sessions.max_prompt_chars``."""
CLIENT_REQUEST_ID_MAX = 128
IDEMPOTENCY_KEY_MAX = 128
PR_TITLE_MAX = 256
PR_BODY_MAX = 60_000
SEQ_MAX = 2**63 - 1
"""The largest event seq a command may name (checked against the session's before any query)."""


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _SessionCommand(_Command):
    session_id: str = Field(min_length=1, max_length=ID_MAX)


class StartSession(_Command):
    """Create a session on a repo, optionally with its first prompt."""

    type: Literal["start-session"] = "start-session"
    repo: str = Field(min_length=1, max_length=REPO_MAX)
    base_branch: str | None = Field(None, max_length=BRANCH_MAX)
    model: str | None = Field(None, max_length=MODEL_MAX)
    effort: str | None = Field(None, max_length=EFFORT_MAX)
    title: str | None = Field(None, max_length=TITLE_MAX)
    prompt: str | None = Field(None, max_length=CONTENT_MAX)
    client_request_id: str | None = Field(None, min_length=1, max_length=CLIENT_REQUEST_ID_MAX)
    idempotency_key: str | None = Field(None, min_length=1, max_length=IDEMPOTENCY_KEY_MAX)
    """A retried start with the same key (per creator) returns the same session."""
    origin_ref: str | None = Field(None, min_length=1, max_length=ORIGIN_REF_MAX_CHARS)
    """What outside asked for it (a Slack thread, a Linear issue): set by integrations only."""
    work_branch: str | None = Field(None, min_length=1, max_length=BRANCH_MAX)
    """Work on this existing branch (a same-repo pull request's head) instead of a branch of the
    session's own: the sandbox starts at its head, the pushes go there as fast-forwards only,
    and no pull request is opened for it (it has one). ``base_branch`` stays the pull request's
    base, for diffs. Set by integrations only (a GitHub fix request), never by a REST client."""
    start_ref: str | None = Field(None, min_length=1, max_length=BRANCH_MAX)
    """Make the session's own branch at this ref of the repo (``refs/pull/<n>/head``: a fork's
    pull request) instead of at ``base_branch``, so the sandbox starts there. Set by
    integrations only."""


class SubmitPrompt(_SessionCommand):
    type: Literal["submit-prompt"] = "submit-prompt"
    content: str = Field(max_length=CONTENT_MAX)
    model: str | None = Field(None, max_length=MODEL_MAX)
    effort: str | None = Field(None, max_length=EFFORT_MAX)
    client_request_id: str | None = Field(None, min_length=1, max_length=CLIENT_REQUEST_ID_MAX)


class CancelPrompt(_SessionCommand):
    """Cancel a queued prompt (``Stop`` ends the running one)."""

    type: Literal["cancel-prompt"] = "cancel-prompt"
    prompt_id: str = Field(min_length=1, max_length=ID_MAX)


class Stop(_SessionCommand):
    """Stop the running prompt, if any."""

    type: Literal["stop"] = "stop"


class Typing(_SessionCommand):
    """Someone is typing a prompt: warm the sandbox."""

    type: Literal["typing"] = "typing"


class SetPresence(_SessionCommand):
    """A connected client's presence; ``client_id`` names the connection, not the user."""

    type: Literal["set-presence"] = "set-presence"
    client_id: str = Field(min_length=1, max_length=ID_MAX)
    status: Literal["active", "idle"] = "active"


class UpdateSession(_SessionCommand):
    """Rename, archive or unarchive; fields left out stay as they are."""

    type: Literal["update-session"] = "update-session"
    title: str | None = Field(None, max_length=TITLE_MAX)
    archived: bool | None = None


class OpenPullRequest(_SessionCommand):
    """Open the session branch's pull request as the sender (or update the open one)."""

    type: Literal["open-pull-request"] = "open-pull-request"
    title: str = Field(min_length=1, max_length=PR_TITLE_MAX)
    body: str = Field("", max_length=PR_BODY_MAX)
    draft: bool = False


class ForkSession(_Command):
    """Start a new session (the sender's) from the session ``session_id`` at its event
    ``at_seq``: its conversation up to there and its commit there (``sessions/fork.py``). Not
    forwarded to the source's owner: a fork only reads the source."""

    type: Literal["fork-session"] = "fork-session"
    session_id: str = Field(min_length=1, max_length=ID_MAX)
    at_seq: int = Field(ge=1, le=SEQ_MAX)
    title: str | None = Field(None, max_length=TITLE_MAX)


SessionCommand = Annotated[
    SubmitPrompt | CancelPrompt | Stop | Typing | SetPresence | UpdateSession | OpenPullRequest,
    Field(discriminator="type"),
]
"""The commands addressed to one existing session (what a replica forwards to its owner)."""
Command = Annotated[
    StartSession
    | ForkSession
    | SubmitPrompt
    | CancelPrompt
    | Stop
    | Typing
    | SetPresence
    | UpdateSession
    | OpenPullRequest,
    Field(discriminator="type"),
]
_COMMAND: TypeAdapter[Command] = TypeAdapter(Command)


def dump_command(command: Command) -> str:
    """The command as JSON text, for the bus."""
    return command.model_dump_json()


def parse_command(text: str | bytes) -> Command:
    """A command from ``dump_command``'s text; raises pydantic's ``ValidationError``."""
    return _COMMAND.validate_json(text)
