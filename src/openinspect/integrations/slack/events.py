"""What we read of Slack's deliveries: pydantic models of exactly the fields we use, every
string bounded. Anything else Slack sends is ignored (``extra="ignore"``); a field we need that
is missing or too long makes the delivery malformed (the routes answer 400).

Events API: an ``event_callback`` envelope around one event (``message``, ``app_mention``,
``app_home_opened``), or a ``url_verification`` challenge. Interactivity: a ``block_actions``
payload (buttons and selects).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SlackId = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
]
"""A team, user, channel, bot or app id, or a message ts (``1700000000.000100``)."""
TEXT_MAX = 40_000
"""Slack's own cap on a message's text."""
VALUE_MAX = 2_000
"""Slack's cap on a button's value."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Authorization(_Wire):
    team_id: SlackId | None = None
    user_id: SlackId | None = None
    is_bot: bool = False


class MessageEvent(_Wire):
    """``message`` and ``app_mention`` (their common fields)."""

    type: Literal["message", "app_mention"]
    user: SlackId | None = None
    bot_id: SlackId | None = None
    subtype: str | None = Field(None, max_length=64)
    text: str = Field("", max_length=TEXT_MAX)
    ts: SlackId
    thread_ts: SlackId | None = None
    channel: SlackId
    channel_type: Literal["im", "channel", "group", "mpim"] | None = None
    team: SlackId | None = None
    edited: dict[str, Any] | None = None


class AppHomeOpened(_Wire):
    type: Literal["app_home_opened"]
    user: SlackId
    tab: str = Field("home", max_length=32)


class EventCallback(_Wire):
    type: Literal["event_callback"]
    team_id: SlackId
    api_app_id: SlackId | None = None
    event_id: SlackId
    event_time: int | None = None
    event: dict[str, Any]
    authorizations: list[Authorization] = Field(default_factory=list, max_length=20)


class UrlVerification(_Wire):
    type: Literal["url_verification"]
    challenge: str = Field(min_length=1, max_length=200)


class IdRef(_Wire):
    id: SlackId


class UserRef(_Wire):
    id: SlackId
    team_id: SlackId | None = None


class MessageRef(_Wire):
    ts: SlackId
    thread_ts: SlackId | None = None


class ContainerRef(_Wire):
    type: str = Field(max_length=32)
    message_ts: SlackId | None = None
    thread_ts: SlackId | None = None
    channel_id: SlackId | None = None


class SelectedOption(_Wire):
    value: str = Field(max_length=VALUE_MAX)


class Action(_Wire):
    action_id: str = Field(min_length=1, max_length=255)
    block_id: str | None = Field(None, max_length=255)
    type: str | None = Field(None, max_length=64)
    value: str | None = Field(None, max_length=VALUE_MAX)
    selected_option: SelectedOption | None = None
    action_ts: SlackId | None = None

    @property
    def chosen(self) -> str | None:
        """The button's value, or the select's chosen option."""
        if self.selected_option is not None:
            return self.selected_option.value
        return self.value


class BlockActions(_Wire):
    type: Literal["block_actions"]
    user: UserRef
    team: IdRef | None = None
    channel: IdRef | None = None
    message: MessageRef | None = None
    container: ContainerRef | None = None
    trigger_id: str | None = Field(None, max_length=255)
    actions: list[Action] = Field(min_length=1, max_length=10)

    def team_id(self) -> str | None:
        return self.team.id if self.team is not None else self.user.team_id

    def channel_id(self) -> str | None:
        if self.channel is not None:
            return self.channel.id
        return self.container.channel_id if self.container is not None else None

    def thread_ts(self) -> str | None:
        """The thread of the message the action is on (its own ts when top level)."""
        if self.message is not None:
            return self.message.thread_ts or self.message.ts
        if self.container is not None:
            return self.container.thread_ts or self.container.message_ts
        return None
