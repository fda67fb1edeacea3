"""What the fake Linear stores and what tests read back: the workspace (organizations, teams and
their workflow states, projects, labels, users, issues), agent sessions with their activities,
OAuth grants and tokens, GraphQL calls and webhook deliveries.

The state keeps mutable records; the inspection API hands out deep copies, so a test holding an
``AgentSession`` sees it as it was when asked. Times are unix seconds (floats).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

ActivityType = Literal["thought", "action", "elicitation", "response", "error", "prompt"]
SessionStatus = Literal["pending", "active", "awaitingInput", "complete", "error", "stale"]
StateType = Literal["triage", "backlog", "unstarted", "started", "completed", "canceled"]
TokenKind = Literal["valid", "missing", "invalid", "expired"]


@dataclass
class Organization:
    id: str
    name: str
    url_key: str
    app_user_id: str
    """The OAuth app's user in this organization (what ``viewer`` answers for an app token)."""
    created_at: float


@dataclass
class WorkflowState:
    id: str
    name: str
    type: StateType
    position: float
    color: str
    team_id: str
    created_at: float


@dataclass
class Team:
    id: str
    key: str
    name: str
    org_id: str
    issue_count: int = 0
    """The last issue number handed out (identifiers are ``KEY-<n>``)."""
    created_at: float = 0.0


@dataclass
class Project:
    id: str
    name: str
    org_id: str
    slug_id: str
    description: str = ""
    created_at: float = 0.0


@dataclass
class Label:
    id: str
    name: str
    org_id: str
    team_id: str | None = None
    color: str = "#5e6ad2"
    created_at: float = 0.0


@dataclass
class User:
    id: str
    name: str
    email: str
    org_id: str
    display_name: str = ""
    app: bool = False
    admin: bool = False
    created_at: float = 0.0


@dataclass
class Issue:
    id: str
    identifier: str
    number: int
    title: str
    description: str | None
    team_id: str
    state_id: str
    org_id: str
    project_id: str | None = None
    label_ids: list[str] = field(default_factory=list)
    assignee_id: str | None = None
    delegate_id: str | None = None
    creator_id: str | None = None
    priority: int = 0
    due_date: str | None = None
    started_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    updates: list[dict[str, Any]] = field(default_factory=list)
    """Every ``issueUpdate`` input applied, in order (what the agent changed)."""


@dataclass
class Comment:
    id: str
    body: str
    user_id: str
    issue_id: str
    created_at: float


@dataclass
class Activity:
    """One agent activity: the agent's (``thought``… ``error``) or a person's ``prompt``."""

    id: str
    session_id: str
    user_id: str
    content: dict[str, Any]
    created_at: float
    ephemeral: bool = False
    signal: str | None = None
    signal_metadata: dict[str, Any] | None = None
    contextual_metadata: dict[str, Any] | None = None
    superseded: bool = False
    """An ephemeral activity another activity came after: Linear no longer shows it."""

    @property
    def type(self) -> ActivityType:
        kind: ActivityType = self.content["type"]
        return kind

    @property
    def body(self) -> str | None:
        body = self.content.get("body")
        return body if isinstance(body, str) else None


@dataclass
class ExternalLink:
    label: str
    url: str


@dataclass
class AgentSession:
    id: str
    org_id: str
    app_user_id: str
    creator_id: str | None
    issue_id: str | None
    comment_id: str | None
    created_at: float
    updated_at: float
    activities: list[Activity] = field(default_factory=list)
    external_links: list[ExternalLink] = field(default_factory=list)
    external_link: str | None = None
    plan: list[dict[str, Any]] | None = None
    started_at: float | None = None
    ended_at: float | None = None
    dismissed_at: str | None = None
    updates: list[dict[str, Any]] = field(default_factory=list)
    """Every ``agentSessionUpdate`` input applied, in order."""

    @property
    def visible_activities(self) -> list[Activity]:
        """The activities as Linear shows them: superseded ephemeral ones left out."""
        return [a for a in self.activities if not a.superseded]

    @property
    def status(self) -> SessionStatus:
        """Derived from the last activity, as Linear does: nothing yet or a person's prompt →
        ``pending``; thought/action → ``active``; elicitation → ``awaitingInput``; response →
        ``complete``; error → ``error``."""
        if not self.activities:
            return "pending"
        return STATUS_AFTER[self.activities[-1].type]

    def of_type(self, kind: ActivityType) -> list[Activity]:
        return [a for a in self.activities if a.type == kind]


STATUS_AFTER: dict[ActivityType, SessionStatus] = {
    "prompt": "pending",
    "thought": "active",
    "action": "active",
    "elicitation": "awaitingInput",
    "response": "complete",
    "error": "error",
}


@dataclass
class Token:
    """An access token (and the refresh token paired with it, if any)."""

    access_token: str
    org_id: str
    user_id: str
    """Whom ``viewer`` is: the org's app user for ``actor=app``, else the installing person."""
    scopes: list[str]
    actor: Literal["app", "user"]
    client_id: str | None
    expires_at: float
    refresh_token: str | None = None
    revoked: bool = False
    code: str | None = None
    """The authorization code it was exchanged for (a reused code revokes it)."""


@dataclass
class Grant:
    """An authorization code handed out by ``/oauth/authorize``, until exchanged."""

    code: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    actor: Literal["app", "user"]
    org_id: str
    user_id: str
    expires_at: float
    used: bool = False


@dataclass(frozen=True)
class ApiCall:
    """One GraphQL request the fake answered."""

    operation_name: str | None
    fields: tuple[str, ...]
    """The top-level fields asked for (``agentActivityCreate``, ``issue``…)."""
    variables: dict[str, Any]
    token_kind: TokenKind
    status: int
    error_codes: tuple[str, ...]
    at: float


@dataclass(frozen=True)
class Attempt:
    """One try at a webhook delivery: ``result`` is the HTTP status the receiver answered, or
    ``"timeout"``, ``"connection_failed"``, ``"no_receiver"`` (no webhook URL registered)."""

    result: int | str
    seconds: float
    at: float
    response_body: str | None = None

    @property
    def ok(self) -> bool:
        return isinstance(self.result, int) and 200 <= self.result < 300


@dataclass
class Delivery:
    """A webhook the fake sent (or will send), with its attempts."""

    id: str
    """The ``Linear-Delivery`` header: the receiver's dedupe key."""
    event: str
    """The ``Linear-Event`` header (``AgentSessionEvent``)."""
    action: str
    body: dict[str, Any]
    raw: bytes
    """The exact bytes sent (and signed)."""
    headers: dict[str, str]
    attempts: list[Attempt] = field(default_factory=list)
    done: bool = False
    replay_of: str | None = None
    """For a replay: the delivery whose bytes and headers it resent."""

    @property
    def ok(self) -> bool:
        return any(a.ok for a in self.attempts)

    @property
    def status(self) -> int | str | None:
        """The last attempt's result (None before the first)."""
        return self.attempts[-1].result if self.attempts else None

    @property
    def agent_session_id(self) -> str | None:
        session = self.body.get("agentSession")
        return str(session["id"]) if isinstance(session, dict) and "id" in session else None


def encode(body: dict[str, Any]) -> bytes:
    """The bytes Linear would send for ``body`` (compact JSON, UTF-8)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
