"""The fake Slack's workspace: users, channels, messages, views and the Web API call log.

One re-entrant lock guards everything: the Web API runs on the server's thread, the test drives
the fake from its own, and the delivery worker reads messages from a third.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from openinspect.testing.slack.records import ApiCall, Channel, Ephemeral, Message, User, View

T = TypeVar("T")


@dataclass(frozen=True)
class Identity:
    """Who the app is in the fake workspace."""

    team_id: str = "T0001"
    team_name: str = "Fake Workspace"
    team_domain: str = "fake"
    bot_user_id: str = "UBOT"
    bot_id: str = "BBOT"
    bot_name: str = "openinspect"
    app_id: str = "A0001"
    verification_token: str = "fake-verification-token"  # noqa: S105 - deprecated, public


@dataclass
class SlackState:
    identity: Identity
    lock: threading.RLock = field(default_factory=threading.RLock)
    changed: threading.Condition = field(init=False)
    users: dict[str, User] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    messages: dict[str, list[Message]] = field(default_factory=dict)
    """Channel id → its messages (top level and replies) in posting order."""
    ephemerals: list[Ephemeral] = field(default_factory=list)
    home: dict[str, View] = field(default_factory=dict)
    modals: list[View] = field(default_factory=list)
    triggers: dict[str, str] = field(default_factory=dict)
    """trigger_id → the user who caused it (``views.open`` needs one)."""
    calls: list[ApiCall] = field(default_factory=list)
    _last_ts: float = 0.0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)
        bot = self.identity
        self.users[bot.bot_user_id] = User(
            id=bot.bot_user_id, name=bot.bot_name, real_name=bot.bot_name, is_bot=True,
            bot_id=bot.bot_id,
        )  # fmt: skip

    # ------------------------------------------------------------------ ids

    def next_ts(self) -> str:
        """A message timestamp, ``"1700000000.000100"``-shaped and strictly increasing."""
        with self.lock:
            now = max(round(time.time(), 6), round(self._last_ts + 0.000001, 6))
            self._last_ts = now
            return f"{now:.6f}"

    def new_id(self, prefix: str) -> str:
        with self.lock:
            return f"{prefix}{next(self._ids):04d}{secrets.token_hex(3).upper()}"

    def trigger_for(self, user: str) -> str:
        with self.lock:
            trigger_id = f"{next(self._ids)}.{int(time.time())}.{secrets.token_hex(16)}"
            self.triggers[trigger_id] = user
            return trigger_id

    # ------------------------------------------------------------------ lookups (lock held)

    def channel(self, channel_id: str) -> Channel | None:
        return self.channels.get(channel_id)

    def dm_with(self, user_id: str) -> Channel:
        """The DM between the bot and ``user_id``, opened on first use."""
        with self.lock:
            for ch in self.channels.values():
                if ch.channel_type == "im" and ch.user == user_id:
                    return ch
            ch = Channel(id=self.new_id("D"), name=user_id, channel_type="im", user=user_id)
            self.channels[ch.id] = ch
            self.messages[ch.id] = []
            return ch

    def resolve_channel(self, ref: str) -> Channel | None:
        """A channel id, ``#name``/name, or a user id (→ the DM with them)."""
        with self.lock:
            if ref in self.channels:
                return self.channels[ref]
            if ref in self.users and not self.users[ref].is_bot:
                return self.dm_with(ref)
            name = ref.removeprefix("#")
            return next((c for c in self.channels.values() if c.name == name), None)

    def find(self, channel_id: str, ts: str) -> Message | None:
        with self.lock:
            return next(
                (m for m in self.messages.get(channel_id, []) if m.ts == ts and not m.deleted),
                None,
            )

    def replies(self, channel_id: str, thread_ts: str) -> list[Message]:
        """The thread's parent then its replies (deleted ones left out)."""
        with self.lock:
            msgs = [m for m in self.messages.get(channel_id, []) if not m.deleted]
            parent = [m for m in msgs if m.ts == thread_ts]
            rest = [m for m in msgs if m.thread_ts == thread_ts and m.ts != thread_ts]
            return parent + rest

    def add_message(self, message: Message) -> Message:
        with self.lock:
            self.messages.setdefault(message.channel, []).append(message)
            if message.thread_ts is not None:
                parent = self.find(message.channel, message.thread_ts)
                if parent is not None and parent.thread_ts is None:
                    parent.thread_ts = parent.ts
            self.changed.notify_all()
            return message

    def record_call(self, call: ApiCall) -> None:
        with self.lock:
            self.calls.append(call)
            self.changed.notify_all()

    def snapshot(self, fn: Callable[[], T]) -> T:
        """``fn()``'s result deep-copied under the lock."""
        with self.lock:
            return copy.deepcopy(fn())
