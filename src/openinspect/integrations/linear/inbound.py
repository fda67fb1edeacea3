"""The inbound side of the Linear agent: accept a verified delivery, acknowledge it, handle it
later.

:meth:`LinearInbound.accept` (called by ``POST /webhooks/linear`` after ``verify``) stores the
delivery in the inbox (key ``linear:<Linear-Delivery>``) **before** the route answers, so a
retry or a replay of the same delivery writes nothing. For ``created`` the same transaction
writes the agent session's row and decides the first ``thought`` (outbox
``thought:<agent session id>``); then the outbox is woken, so the thought is posted within
seconds whatever the handling does next (Linear shows an agent as unresponsive without an
activity within 10 s). A follow-up gets a thought of its own the same way.

Handling runs in the background (``integrations.inbox``, then ``handlers``), one event of an
agent session at a time in this process; a row a crash or a failure left pending is handled
again by :meth:`recover` (the ``linear_inbox`` service) once its claim is a minute old, at most
:data:`ATTEMPTS_MAX` times. Dropped before they are stored: events of a workspace the app is
not installed in (or for another app user), and actions other than ``created`` and
``prompted`` (and the stop actions some senders use).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from pydantic import ValidationError

from openinspect.agent.models import ModelRegistry
from openinspect.bus import Bus
from openinspect.integrations.inbox import InboxWorker
from openinspect.integrations.linear import activities
from openinspect.integrations.linear.client import LinearClient
from openinspect.integrations.linear.events import AgentSessionEvent
from openinspect.integrations.linear.handlers import LinearHandlers, thought_for
from openinspect.integrations.linear.routing import LinearRouter
from openinspect.integrations.linear.tokens import LinearTokens
from openinspect.integrations.links import bounded_key
from openinspect.integrations.outbox import wake
from openinspect.people.roles import SessionRepoPolicy
from openinspect.sessions.commands import CommandHandler
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.store.inbox import INBOX_KEY_MAX, InboxItem

log = logging.getLogger(__name__)
SOURCE = "linear"
ACTIONS = ("created", "prompted", "stopped", "cancelled")
RECOVER_AFTER = timedelta(minutes=1)
ATTEMPTS_MAX = 5
FOLLOW_UP_THOUGHT = "Got it — working on it"


class LinearInbound:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Bus,
        commands: CommandHandler,
        models: ModelRegistry,
        policy: SessionRepoPolicy,
        client: LinearClient,
        tokens: LinearTokens,
    ) -> None:
        self.store = store
        self.bus = bus
        self.handlers = LinearHandlers(
            settings,
            store,
            bus,
            commands,
            client,
            tokens,
            LinearRouter(settings, store, models, policy),
        )
        self.worker = InboxWorker(SOURCE, store.inbox, self._dispatch, attempts_max=ATTEMPTS_MAX)

    async def close(self) -> None:
        """Cancel the handling in progress (its rows stay pending: recovered later)."""
        await self.worker.close()

    async def idle(self, timeout_s: float = 30.0) -> None:
        """Wait until no handling runs (for tests and a graceful stop)."""
        await self.worker.idle(timeout_s)

    # --- accepting ---

    async def accept(self, event: AgentSessionEvent, raw: bytes, delivery_id: str) -> bool:
        """Store one delivery (see the module docstring); True when it is new and will be
        handled."""
        if event.action not in ACTIONS:
            return False
        install = await self.store.linear.install_info(event.organization_id)
        if install is None:
            log.info("linear: a delivery for workspace %s, not installed", event.organization_id)
            return False
        if install.app_user_id and event.app_user_id and event.app_user_id != install.app_user_id:
            return False
        agent = event.agent_session
        store = self.store
        async with store.engine.begin() as conn:
            item = await store.inbox.accept(
                source=SOURCE,
                key=bounded_key(f"linear:{delivery_id}", INBOX_KEY_MAX),
                kind=event.action,
                payload=raw.decode("utf-8", errors="replace"),
                conn=conn,
            )
            if item is None:
                return False
            if event.action == "created":
                issue = agent.issue
                await store.linear.create_session(
                    conn,
                    agent_session_id=agent.id,
                    org_id=event.organization_id,
                    issue_id=issue.id if issue else None,
                    issue_identifier=issue.identifier if issue else None,
                    issue_url=issue.url if issue else None,
                    linear_user_id=agent.creator_id,
                )
                thought = (f"thought:{agent.id}", thought_for(event))
            elif not event.stop and event.prompt_body:
                marker = (event.agent_activity.id if event.agent_activity else None) or item.id
                thought = (f"thought:{agent.id}:{marker}", FOLLOW_UP_THOUGHT)
            else:
                thought = None
            known = event.action == "created" or await store.linear.session(agent.id, conn=conn)
            if thought is not None and known:
                await activities.post_activity(
                    store,
                    conn,
                    key=thought[0],
                    org_id=event.organization_id,
                    agent_session_id=agent.id,
                    content=activities.message("thought", thought[1]),
                )
        await wake(self.bus)
        self._spawn(item)
        return True

    def _spawn(self, item: InboxItem) -> None:
        self.worker.spawn(item)

    # --- handling ---

    async def _dispatch(self, item: InboxItem) -> str:
        try:
            event = AgentSessionEvent.model_validate(item.payload)
        except ValidationError:
            return "ignored"
        async with self.worker.lock(event.agent_session.id):
            if event.action == "created":
                return await self.handlers.created(event, item)
            return await self.handlers.prompted(event, item)

    async def recover(self) -> int:
        """Handle again the pending rows whose last claim is over a minute old; how many."""
        return await self.worker.recover(await self.store.inbox.stale(SOURCE, RECOVER_AFTER))
