"""Delivery: the only code that posts to Slack (reactions aside). One pass (``deliver``):

1. every thread with no status message gets its status post decided (outbox ``status:<id>``,
   the state's version in the body);
2. every undelivered outbox row is posted in decision order, ``chat.postMessage`` (the row's key
   in the message ``metadata``) or ``chat.postEphemeral``, and its ``ts`` recorded (a status
   post's also as its thread's ``status_ts``);
3. every thread whose state is newer than what Slack shows gets one ``chat.update`` with the
   rendered state, at most once per ``slack.status_interval_s`` per thread (a throttled edit
   is made on a later pass: the newest state always lands), then its delivered version moves;
   a running thread's status is also edited every ``ELAPSED_REFRESH_S`` so its elapsed time
   moves during a long step.

Exactly once, as far as Slack lets us: a row's attempt is counted (committed) *before* its call.
A row with earlier attempts may already be in Slack (the process died after Slack answered and
before the ``ts`` committed), so before posting it again delivery looks for its key in the
thread (``conversations.replies`` with ``include_all_metadata``; top-level posts in the
channel's recent history) and adopts the message it finds. Ephemeral messages cannot be looked
up: they are at least once.

Failures: a rate limit (HTTP 429, ``Retry-After``), a 5xx, a transient error code, a refused
bot token or a broken connection pauses delivery (the row stays and is tried again); any other
Slack error code (``channel_not_found``, ``not_in_channel``, ``is_archived``, ``msg_too_long``…)
marks the row failed with the code (a code that is not Slack-shaped is kept as
``slack_error``), and it is never tried again. A failed edit gives up that version.

One server at a time delivers (the ``slack_outbound`` service holds a lease), so two replicas
never post the same row at once.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.domain.events import utcnow
from openinspect.integrations.slack import render
from openinspect.integrations.slack.state import ThreadState
from openinspect.settings import Settings
from openinspect.store.slack_threads import (
    STATUS_KEY_PREFIX,
    SlackPost,
    SlackThread,
    SlackThreadStore,
)

log = logging.getLogger(__name__)
METADATA_EVENT_TYPE = "openinspect_post"
OUTBOX_CHANNEL = "slack-outbox"
"""Bus channel: a kick after writing thread or outbox rows (any message)."""
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
AUTH_ERRORS = frozenset(
    {"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired"}
)
"""Slack refuses the bot token itself: no row is at fault, so none is failed; delivery waits
(the longest pause) until the token works again."""
PAUSE_FIRST_S = 1.0
PAUSE_MAX_S = 60.0
RETRY_AFTER_MAX_S = 300.0
LOOKUP_PAGES_MAX = 10
LOOKUP_PAGE_SIZE = 200
ELAPSED_REFRESH_S = 30.0
"""A running thread's status is edited at least this often, so its clock moves during a long
step that emits no event."""
HISTORY_SLACK_S = 120
"""A top-level post is looked for in the channel history from this long before it was decided."""
_CODE = re.compile(r"[a-z0-9_]{1,64}")


class _Pause(Exception):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class _Permanent(Exception):
    def __init__(self, code: str) -> None:
        self.code = code


def _classify(exc: Exception, pause_s: float) -> Exception:
    """A Slack client failure as a pause (try again later) or a permanent error code."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        code = exc.response.get("error") if isinstance(exc.response.data, dict) else None
        if status == 429:
            raw = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
            try:
                wait_s = float(raw[0] if isinstance(raw, list) else raw)
            except (TypeError, ValueError):
                wait_s = pause_s
            return _Pause(min(max(wait_s, 0.1), RETRY_AFTER_MAX_S))
        if code in AUTH_ERRORS:
            log.error("Slack refuses the bot token (%s); delivery waits", code)
            return _Pause(PAUSE_MAX_S)
        if status >= 500 or code in TRANSIENT_ERRORS:
            return _Pause(pause_s)
        if isinstance(code, str) and _CODE.fullmatch(code):
            return _Permanent(code)
        return _Permanent("slack_error")
    return _Pause(pause_s)  # the connection, a timeout, a body Slack did not answer


class SlackDelivery:
    """One ``deliver`` pass after another (see the module docstring)."""

    def __init__(
        self,
        threads: SlackThreadStore,
        engine: AsyncEngine,
        settings: Settings,
        client: AsyncWebClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_s: float = ELAPSED_REFRESH_S,
    ) -> None:
        self._threads = threads
        self._engine = engine
        self._settings = settings
        self._client = client
        self._clock = clock
        self._refresh_s = refresh_s
        self._edited: dict[str, float] = {}
        """Session → when its status message was last posted or edited (this process)."""
        self._running: set[str] = set()
        """Sessions whose status message last showed a running prompt."""
        self._paused_until = 0.0
        self._pause_s = PAUSE_FIRST_S

    @property
    def paused_s(self) -> float:
        """How long delivery still waits after a rate limit or an outage."""
        return max(0.0, self._paused_until - self._clock())

    async def deliver(self) -> float | None:
        """One pass; returns the seconds until a throttled edit is due (None: nothing waits)."""
        if self.paused_s > 0:
            return self.paused_s
        try:
            await self._decide_status_posts()
            await self._post_all()
            due = await self._edit_all()
        except _Pause as pause:
            self._paused_until = self._clock() + pause.seconds
            self._pause_s = min(self._pause_s * 2, PAUSE_MAX_S)
            log.warning("slack delivery paused for %.1fs", pause.seconds)
            return pause.seconds
        self._pause_s = PAUSE_FIRST_S
        return due

    async def _call(self, method: str, **args: Any) -> dict[str, Any]:
        try:
            response = await getattr(self._client, method)(**args)
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise _classify(exc, self._pause_s) from None
        data = response.data
        return data if isinstance(data, dict) else {}

    async def _decide_status_posts(self) -> None:
        now = utcnow()
        for thread in await self._threads.without_status():
            state = ThreadState.model_validate(thread.state)
            body = render.status_message(
                state, settings=self._settings, session_id=thread.session_id, now=now
            )
            async with self._engine.begin() as conn:
                await self._threads.enqueue_post(
                    conn,
                    key=STATUS_KEY_PREFIX + thread.session_id,
                    team_id=thread.team_id,
                    channel_id=thread.channel_id,
                    thread_ts=thread.thread_ts,
                    kind="status",
                    body={**body, "version": thread.version},
                    session_id=thread.session_id,
                )

    async def _post_all(self) -> None:
        for post in await self._threads.unposted():
            try:
                ts = await self._post(post)
            except _Permanent as failed:
                log.warning("slack post %d failed for good: %s", post.id, failed.code)
                await self._threads.record_failed(post.id, failed.code)
                continue
            await self._threads.record_posted(post, ts)
            if post.kind == "status" and post.session_id is not None:
                self._edited[post.session_id] = self._clock()
                self._running.add(post.session_id)  # the refresh looks whether it runs

    async def _post(self, post: SlackPost) -> str:
        earlier = await self._threads.begin_attempt(post.id)
        text = str(post.body.get("text") or "")
        blocks = post.body.get("blocks")
        if post.kind == "ephemeral":
            answer = await self._call(
                "chat_postEphemeral",
                channel=post.channel_id,
                user=post.slack_user_id,
                text=text,
                blocks=blocks,
                thread_ts=post.thread_ts,
            )
            return str(answer.get("message_ts") or "")
        if earlier > 0:
            found = await self._find(post)
            if found is not None:
                log.info("slack post %d was delivered before; its message is adopted", post.id)
                return found
        answer = await self._call(
            "chat_postMessage",
            channel=post.channel_id,
            text=text,
            blocks=blocks,
            thread_ts=post.thread_ts,
            metadata={"event_type": METADATA_EVENT_TYPE, "event_payload": {"key": post.key}},
        )
        return str(answer["ts"])

    async def _find(self, post: SlackPost) -> str | None:
        """The ts of the message in Slack that carries ``post``'s key, if any."""
        cursor: str | None = None
        for _ in range(LOOKUP_PAGES_MAX):
            if post.thread_ts is not None:
                page = await self._call(
                    "conversations_replies",
                    channel=post.channel_id,
                    ts=post.thread_ts,
                    include_all_metadata=True,
                    limit=LOOKUP_PAGE_SIZE,
                    cursor=cursor,
                )
            else:
                since = post.created_at - timedelta(seconds=HISTORY_SLACK_S)
                page = await self._call(
                    "conversations_history",
                    channel=post.channel_id,
                    include_all_metadata=True,
                    oldest=f"{_epoch(since):.6f}",
                    limit=LOOKUP_PAGE_SIZE,
                    cursor=cursor,
                )
            for message in page.get("messages") or []:
                meta = message.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") == METADATA_EVENT_TYPE and payload.get("key") == post.key:
                    return str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or not cursor:
                return None
        return None

    async def _edit_all(self) -> float | None:
        interval_s = self._settings.slack.status_interval_s
        due: float | None = None
        for thread in await self._threads.stale():
            last = self._edited.get(thread.session_id)
            if last is not None and (waited := self._clock() - last) < interval_s:
                left = interval_s - waited
                due = left if due is None else min(due, left)
                continue
            await self._edit(thread)
        for session_id in sorted(self._running):
            if self._clock() - self._edited.get(session_id, 0.0) < self._refresh_s:
                continue
            current = await self._threads.by_session(session_id)
            live = current is not None and ThreadState.model_validate(current.state).running
            if current is None or current.status_ts is None or not live:
                self._running.discard(session_id)
                continue
            await self._edit(current)
        return due

    async def _edit(self, thread: SlackThread) -> None:
        """One ``chat.update`` of the thread's status message with its state as it is."""
        state = ThreadState.model_validate(thread.state)
        body = render.status_message(
            state, settings=self._settings, session_id=thread.session_id, now=utcnow()
        )
        try:
            await self._call(
                "chat_update",
                channel=thread.channel_id,
                ts=thread.status_ts,
                text=body["text"],
                blocks=body["blocks"],
            )
        except _Permanent as failed:
            log.warning(
                "slack status of session %s not updated: %s", thread.session_id, failed.code
            )
            state.status = "finished"  # nothing more to refresh
        self._edited[thread.session_id] = self._clock()
        if state.running:
            self._running.add(thread.session_id)
        else:
            self._running.discard(thread.session_id)
        await self._threads.mark_delivered(thread.session_id, thread.version)


def _epoch(at: datetime) -> float:
    return at.timestamp()
