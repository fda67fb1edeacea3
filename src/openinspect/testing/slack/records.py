"""What the fake Slack stores and what tests read back: users, channels, messages, ephemeral
messages, Home views, recorded Web API calls and event deliveries.

The state keeps mutable records; the inspection API hands out deep copies, so a test holding a
``Message`` sees it as it was when asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

TokenKind = Literal["bot", "app", "missing", "invalid"]
Via = Literal["http", "socket", "none"]
DeliveryKind = Literal["event", "interaction"]


@dataclass
class User:
    id: str
    name: str
    email: str | None = None
    real_name: str | None = None
    display_name: str | None = None
    is_bot: bool = False
    bot_id: str | None = None


@dataclass
class Channel:
    id: str
    name: str
    channel_type: Literal["channel", "group", "im", "mpim"] = "channel"
    user: str | None = None
    """The other party of a DM."""
    is_member: bool = True


@dataclass
class Message:
    """One message in a channel (a thread reply has ``thread_ts`` != ``ts``)."""

    channel: str
    ts: str
    text: str
    user: str | None = None
    bot_id: str | None = None
    subtype: str | None = None
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    metadata: dict[str, Any] | None = None
    edits: int = 0
    """How many times ``chat.update`` changed it."""
    reactions: dict[str, list[str]] = field(default_factory=dict)
    """Reaction name → the users who added it, in order."""
    deleted: bool = False
    client_msg_id: str | None = None

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts


@dataclass
class Ephemeral:
    """A ``chat.postEphemeral`` message: only ``user`` sees it, Slack does not keep it."""

    channel: str
    user: str
    message_ts: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None


@dataclass
class View:
    """A published Home tab or an opened modal."""

    id: str
    type: str
    user: str
    hash: str
    blocks: list[dict[str, Any]]
    raw: dict[str, Any]
    """The view as the app sent it (title, callback_id, private_metadata…)."""
    trigger_id: str | None = None


@dataclass(frozen=True)
class ApiCall:
    """One Web API call the fake answered."""

    method: str
    args: dict[str, Any]
    """The arguments from query, form and JSON body merged (the token removed)."""
    token_kind: TokenKind
    ok: bool
    error: str | None
    status: int
    at: float


@dataclass(frozen=True)
class Attempt:
    """One try at a delivery.

    ``result`` is the HTTP status the receiver answered, or ``"acked"`` (Socket Mode ack),
    ``"timeout"`` (no answer within ``ack_timeout_s``), ``"connection_failed"``, or
    ``"no_receiver"`` (neither an events URL nor a socket was there)."""

    result: int | str
    seconds: float
    """Time until answered (or given up on, for a timeout)."""
    via: Via
    retry_num: int
    retry_reason: str | None

    @property
    def acked(self) -> bool:
        return self.result == "acked" or (isinstance(self.result, int) and 200 <= self.result < 300)


@dataclass
class Delivery:
    """An event callback or interaction payload and the attempts made to deliver it."""

    id: str
    """The event_id (``Ev…``) of an event; an ``In…`` id of an interaction."""
    kind: DeliveryKind
    type: str
    """The inner event's type (``app_mention``, ``message``…) or the payload type
    (``block_actions``)."""
    body: dict[str, Any]
    attempts: list[Attempt] = field(default_factory=list)
    done: bool = False
    response_body: str | None = None
    """The receiver's last HTTP answer (capped), for interactions and url_verification."""

    @property
    def acked(self) -> bool:
        return any(a.acked for a in self.attempts)

    @property
    def event(self) -> dict[str, Any]:
        """The inner event (empty for interactions)."""
        inner = self.body.get("event")
        return inner if isinstance(inner, dict) else {}

    @property
    def raw(self) -> str:
        return json.dumps(self.body, separators=(",", ":"))
