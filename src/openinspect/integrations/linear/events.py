"""The webhook bodies the agent acts on: Linear's ``AgentSessionEvent`` (``created``,
``prompted``), the fields it reads and nothing more.

Everything here came from outside: ids are bounded (an id longer than Linear's is refused),
texts are cut to a size a prompt can hold, lists to a few dozen entries. Unknown fields are
ignored, so Linear adding one changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

ID_MAX = 64
KEY_MAX = 32
NAME_MAX = 255
TITLE_MAX = 1_000
TEXT_MAX = 50_000
CONTEXT_MAX = 100_000
URL_MAX = 2_048
LABELS_MAX = 50
EVENT = "AgentSessionEvent"


def _cut(limit: int) -> BeforeValidator:
    def cut(value: Any) -> Any:
        return value[:limit] if isinstance(value, str) else value

    return BeforeValidator(cut)


def _first(limit: int) -> BeforeValidator:
    def first(value: Any) -> Any:
        return value[:limit] if isinstance(value, list) else value

    return BeforeValidator(first)


Id = Annotated[str, Field(min_length=1, max_length=ID_MAX)]
Name = Annotated[str, _cut(NAME_MAX)]
Text = Annotated[str, _cut(TEXT_MAX)]
Url = Annotated[str, Field(max_length=URL_MAX)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Team(_Model):
    id: Id
    key: Annotated[str, Field(max_length=KEY_MAX)] = ""
    name: Name = ""


class Label(_Model):
    id: Id | None = None
    name: Name


class Project(_Model):
    id: Id
    name: Name = ""


class Issue(_Model):
    id: Id
    identifier: Annotated[str, Field(max_length=KEY_MAX)] = ""
    title: Annotated[str, _cut(TITLE_MAX)] = ""
    description: Text | None = None
    url: Url | None = None
    team: Team | None = None
    labels: Annotated[list[Label], _first(LABELS_MAX)] = Field(default_factory=list)
    project: Project | None = None


class Comment(_Model):
    id: Id | None = None
    body: Text = ""
    user_id: Id | None = Field(None, alias="userId")


class AgentSession(_Model):
    id: Id
    creator_id: Id | None = Field(None, alias="creatorId")
    issue: Issue | None = None
    comment: Comment | None = None


class ActivityContent(_Model):
    type: Annotated[str, Field(max_length=32)]
    body: Text | None = None


class AgentActivity(_Model):
    id: Id | None = None
    user_id: Id | None = Field(None, alias="userId")
    signal: Annotated[str, Field(max_length=32)] | None = None
    content: ActivityContent | None = None


class AgentSessionEvent(_Model):
    type: Literal["AgentSessionEvent"]
    action: Annotated[str, Field(max_length=32)]
    organization_id: Id = Field(alias="organizationId")
    app_user_id: Id | None = Field(None, alias="appUserId")
    webhook_timestamp: int = Field(alias="webhookTimestamp")
    prompt_context: Annotated[str, _cut(CONTEXT_MAX)] | None = Field(None, alias="promptContext")
    agent_session: AgentSession = Field(alias="agentSession")
    agent_activity: AgentActivity | None = Field(None, alias="agentActivity")

    @property
    def stop(self) -> bool:
        """A person asked the agent to stop: a ``prompted`` with the ``stop`` signal (and,
        defensively, the actions some senders use for it)."""
        signal = self.agent_activity.signal if self.agent_activity is not None else None
        return signal == "stop" or self.action in ("stopped", "cancelled")

    @property
    def prompt_body(self) -> str:
        """What the person wrote in a follow-up (``prompted``)."""
        activity = self.agent_activity
        content = activity.content if activity is not None else None
        return (content.body or "").strip() if content is not None else ""

    @property
    def person_id(self) -> str | None:
        """Who the event is from: the follow-up's author, else the session's creator."""
        activity = self.agent_activity
        if activity is not None and activity.user_id:
            return activity.user_id
        return self.agent_session.creator_id
