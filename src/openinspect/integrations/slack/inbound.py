"""The inbound side of the Slack app: accept a delivery, acknowledge it, handle it later.

``accept_event`` / ``accept_interaction`` (called by the HTTP routes after ``verify`` and by
Socket Mode for each envelope) store the delivery in the inbox **before** the caller
acknowledges it, keyed so that Slack's retries (same ``event_id``) and the second event of a
message (``app_mention`` and ``message`` for one ts) write nothing; then handling runs in the
background, so the acknowledgement is never late (Slack retries after 3 s). Handling claims the
row, adds the 👀 reaction, and dispatches (``messages``, ``interactions``, ``home``); a row a
crash left pending is handled again by :meth:`SlackInbound.recover` (the ``slack_inbox``
service) once its claim is a minute old, at most :data:`ATTEMPTS_MAX` times.

Dropped before they are stored (and acknowledged): bot messages and our own, edits and other
subtypes, channel messages that do not mention the app, events of another team, actions we do
not act on. The handler checks them again (a stored row may predate knowing who the app is).

Events for one thread are handled one at a time in this process, so a quick reply cannot race
its own session's start.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from slack_sdk.web.async_client import AsyncWebClient

from openinspect.agent.models import ModelRegistry
from openinspect.bus import Bus
from openinspect.errors import ConfigError
from openinspect.integrations.inbox import InboxWorker
from openinspect.integrations.slack.client import web_client
from openinspect.integrations.slack.deps import Me, SlackDeps, bounded_key
from openinspect.integrations.slack.events import (
    AppHomeOpened,
    BlockActions,
    EventCallback,
    MessageEvent,
)
from openinspect.integrations.slack.home import SlackHome
from openinspect.integrations.slack.identity import SlackIdentity
from openinspect.integrations.slack.interactions import Interactions, handled
from openinspect.integrations.slack.messages import MessageHandler, addressed
from openinspect.integrations.slack.routing import RepoRouter
from openinspect.people.roles import SessionRepoPolicy
from openinspect.sessions.commands import CommandHandler
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.store.slack_inbox import InboxRow

log = logging.getLogger(__name__)
RECOVER_AFTER = timedelta(minutes=1)
ATTEMPTS_MAX = 5
ACCEPT_WHOAMI_TIMEOUT_S = 1.0
"""How long accepting the first delivery may wait to learn who the app is (then: later)."""


class SlackInbound:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Bus,
        commands: CommandHandler,
        models: ModelRegistry,
        policy: SessionRepoPolicy,
        *,
        client: AsyncWebClient | None = None,
    ) -> None:
        self.deps = SlackDeps(settings, store, bus, commands, client or web_client(settings.slack))
        self.identity = SlackIdentity(settings, store, self.deps.client, self.deps.post)
        self.router = RepoRouter(settings, store, models, policy)
        self.home = SlackHome(settings, store, self.deps.client, models, self.router, self.identity)
        self.messages = MessageHandler(self.deps, self.identity, self.router)
        self.interactions = Interactions(self.deps, self.identity, self.messages, self.home)
        self.worker = InboxWorker(
            "slack", store.slack_inbox, self._dispatch, attempts_max=ATTEMPTS_MAX
        )

    @property
    def store(self) -> Store:
        return self.deps.store

    async def close(self) -> None:
        """Cancel the handling in progress (its rows stay pending: recovered later)."""
        await self.worker.close()

    async def idle(self, timeout_s: float = 30.0) -> None:
        """Wait until no handling runs (for tests and a graceful stop)."""
        await self.worker.idle(timeout_s)

    async def _known_me(self) -> Me | None:
        if self.deps.known is not None:
            return self.deps.known
        try:
            async with asyncio.timeout(ACCEPT_WHOAMI_TIMEOUT_S):
                return await self.deps.me()
        except (TimeoutError, ConfigError):
            return None

    # --- accepting ---

    async def accept_event(self, callback: EventCallback, raw: Mapping[str, Any]) -> bool:
        """Store one Events API callback (see the module docstring); True when it is new and
        will be handled."""
        me = await self._known_me()
        team = callback.team_id
        if me is not None and team != me.team_id:
            return False
        kind = callback.event.get("type")
        msg_key = None
        if kind in ("message", "app_mention"):
            try:
                msg = MessageEvent.model_validate(callback.event)
            except ValidationError:
                return False
            if not addressed(msg, me):
                return False
            msg_key = bounded_key(f"msg:{team}:{msg.channel}:{msg.ts}")
        elif kind == "app_home_opened":
            try:
                if AppHomeOpened.model_validate(callback.event).tab != "home":
                    return False
            except ValidationError:
                return False
        else:
            return False
        row = await self.store.slack_inbox.accept(
            key=bounded_key(f"event:{team}:{callback.event_id}"),
            msg_key=msg_key,
            kind="event",
            payload=json.dumps(raw),
        )
        if row is None:
            return False
        self._spawn(row)
        return True

    async def accept_interaction(self, actions: BlockActions, raw: Mapping[str, Any]) -> bool:
        """Store one ``block_actions`` payload; True when it is new and will be handled."""
        if not any(handled(a) for a in actions.actions):
            return False
        team = actions.team_id() or "-"
        me = await self._known_me()
        if me is not None and team != me.team_id:
            return False
        first = actions.actions[0]
        marker = actions.trigger_id or f"{actions.user.id}:{first.action_ts}:{first.action_id}"
        row = await self.store.slack_inbox.accept(
            key=bounded_key(f"action:{team}:{marker}"),
            msg_key=None,
            kind="action",
            payload=json.dumps(raw),
        )
        if row is None:
            return False
        self._spawn(row)
        return True

    def _spawn(self, row: InboxRow) -> None:
        self.worker.spawn(row)

    # --- handling ---

    async def handle(self, row: InboxRow) -> None:
        """Claim and handle one inbox row; a failure leaves it pending for ``recover`` (until
        :data:`ATTEMPTS_MAX` attempts: then ``failed``)."""
        await self.worker.handle(row)

    async def _dispatch(self, row: InboxRow) -> str:
        me = await self.deps.me()
        if row.kind == "action":
            try:
                actions = BlockActions.model_validate(row.payload)
            except ValidationError:
                return "ignored"
            return await self.interactions.handle(actions, me)
        try:
            callback = EventCallback.model_validate(row.payload)
        except ValidationError:
            return "ignored"
        if callback.team_id != me.team_id:
            return "ignored"
        kind = callback.event.get("type")
        if kind == "app_home_opened":
            opened = AppHomeOpened.model_validate(callback.event)
            await self.home.publish(me.team_id, opened.user)
            return "done"
        msg = MessageEvent.model_validate(callback.event)
        async with self.worker.lock(f"{msg.channel}:{msg.thread_ts or msg.ts}"):
            return await self.messages.handle(me.team_id, msg, me)

    async def recover(self) -> int:
        """Handle again the pending rows whose last claim is over a minute old; how many."""
        return await self.worker.recover(await self.store.slack_inbox.stale(RECOVER_AFTER))
