"""The Slack projection: the global event feed → each Slack thread's status, final messages and
the agent's notifications, decided in the feed cursor's transaction.

:class:`SlackOutbound` is the handler of the feed consumer ``slack_threads`` (``sessions/
feed.py``; a new cursor starts at the feed's end). For every event of a session that has a
``slack_threads`` row it folds the event into the row's ``state`` (``state.py``) and bumps its
``version``; delivery (``delivery.py``) edits the status message until Slack shows that version.
It decides posts by writing outbox rows (``slack_posts``) with keys that make each decision once:

- ``final:<prompt id>`` when a prompt ends: the final message (``render.final_message``). When a
  newer prompt of the session was queued before this one ended (the person wrote again while
  the agent worked), the ended prompt was **superseded**: its row carries only a one-line note
  (``render.superseded_message``), never its result as if it were current; the newer prompt's
  final message follows.
- ``notify:<session id>:<seq>`` for the agent's ``notify`` event: in the session's thread, or
  top level in ``channel`` when it is one of ``slack.notify_channels`` (checked again here).

Everything is written through the claim's connection, so it commits with the cursor move: after
a crash the batch is handled again and the keys drop the repeats. No Slack call is made here.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncConnection

from openinspect.domain.events import Event, Notify, PromptFinished
from openinspect.integrations.slack import render
from openinspect.integrations.slack.state import ThreadState, apply, repo_label
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.store.feed import FeedBatch
from openinspect.store.slack_threads import SlackThread

log = logging.getLogger(__name__)
CONSUMER = "slack_threads"
FEED_TYPES = (
    "session-updated",
    "prompt-queued",
    "prompt-started",
    "prompt-finished",
    "prompt-cancelled",
    "agent-text",
    "agent-thinking",
    "tool-call",
    "tool-result",
    "usage",
    "sandbox-status",
    "git-push",
    "pr-opened",
    "pr-updated",
    "notify",
)


class _Tracked:
    __slots__ = ("changed", "state", "thread")

    def __init__(self, thread: SlackThread, state: ThreadState) -> None:
        self.thread = thread
        self.state = state
        self.changed = False


class SlackOutbound:
    """The ``slack_threads`` feed handler (see the module docstring)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    async def on_feed(self, batch: FeedBatch, conn: AsyncConnection) -> None:
        tracked: dict[str, _Tracked | None] = {}
        for entry in batch.entries:
            event = entry.event
            session_id = event.session_id
            if session_id not in tracked:
                tracked[session_id] = await self._load(conn, session_id)
            thread = tracked[session_id]
            if isinstance(event, Notify):
                await self._notify(conn, event, thread)
                continue
            if thread is None:
                continue
            ended = self._ended(thread.state, event)
            if apply(thread.state, event):
                thread.changed = True
            if ended:
                await self._final(conn, thread, event)
        threads = self._store.slack_threads
        for session_id, thread in tracked.items():
            if thread is not None and thread.changed:
                await threads.save_state(conn, session_id, thread.state.model_dump(mode="json"))

    async def _load(self, conn: AsyncConnection, session_id: str) -> _Tracked | None:
        threads = self._store.slack_threads
        thread = await threads.by_session(session_id, conn=conn)
        if thread is None:
            return None
        state = ThreadState.model_validate(thread.state)
        tracked = _Tracked(thread, state)
        if not state.repo:  # the session was created before its thread row
            facts = await threads.session_facts(conn, session_id)
            if facts is not None:
                state.repo, state.title = repo_label(facts.repo_url), facts.title
                state.branch = state.branch or facts.branch
                state.cost_usd = max(state.cost_usd, facts.total_cost_usd)
                tracked.changed = True
        return tracked

    @staticmethod
    def _ended(state: ThreadState, event: Event) -> bool:
        """The event ends the prompt the thread follows."""
        return isinstance(event, PromptFinished) and event.prompt_id == state.prompt_id

    async def _final(self, conn: AsyncConnection, tracked: _Tracked, event: Event) -> None:
        state, thread = tracked.state, tracked.thread
        if state.queued:
            body = render.superseded_message()
        else:
            body = render.final_message(
                state, settings=self._settings, session_id=thread.session_id
            )
        await self._store.slack_threads.enqueue_post(
            conn,
            key=f"final:{event.prompt_id}",
            team_id=thread.team_id,
            channel_id=thread.channel_id,
            thread_ts=thread.thread_ts,
            kind="final",
            body=body,
            session_id=thread.session_id,
        )

    async def _notify(self, conn: AsyncConnection, event: Notify, tracked: _Tracked | None) -> None:
        slack = self._settings.slack
        thread = tracked.thread if tracked is not None else None
        if event.channel is not None:
            if event.channel not in slack.notify_channels:
                log.warning(
                    "session %s: a notify to a channel not allowed dropped", event.session_id
                )
                return
            team, channel, thread_ts = thread.team_id if thread else "", event.channel, None
        elif thread is not None:
            team, channel, thread_ts = thread.team_id, thread.channel_id, thread.thread_ts
        else:
            log.warning("session %s: a notify with no Slack thread dropped", event.session_id)
            return
        title = tracked.state.title if tracked is not None else ""
        await self._store.slack_threads.enqueue_post(
            conn,
            key=f"notify:{event.session_id}:{event.seq}",
            team_id=team,
            channel_id=channel,
            thread_ts=thread_ts,
            kind="notify",
            body=render.notify_message(
                event.text, settings=self._settings, session_id=event.session_id, title=title
            ),
            session_id=event.session_id,
        )
