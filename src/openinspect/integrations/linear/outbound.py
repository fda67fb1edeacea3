"""The Linear projection: the global event feed → each agent session's activities, decided in
the feed cursor's transaction (the ``outbox`` service runs it, consumer ``linear_activities``).

For every event of a session that reports to an agent session (a ``linear_sessions`` row) it
folds the event into the row's ``state`` (:class:`ActivityState`) and decides outbox rows
(``activities``) with keys that make each decision once:

- ``tool-call`` → an ``action`` activity (ephemeral: Linear shows the latest one as the live
  step), ``act:<agent session id>:<seq>``, at most :data:`ACTIONS_PER_MINUTE` in a minute of the
  events' own clock; the calls over the cap are counted and said in one ``action`` when the
  minute is over or the prompt ends;
- ``pr-opened`` → the session's external links gain the pull request;
- ``prompt-finished`` → ``final:<prompt id>``: a ``response`` with the agent's last text (cut)
  and the pull request's link when the session opened one, "Stopped as asked." when it was
  stopped, or an ``error`` naming the failure's code (never its internals) when it failed.

Everything is written through the cursor's connection, so it commits with the cursor move:
after a crash the batch is handled again and the keys drop the repeats. No Linear call here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncConnection

from openinspect.domain.events import Event, PromptFinished, ToolCall
from openinspect.integrations.linear import activities
from openinspect.integrations.links import session_url
from openinspect.integrations.outbox import Projection
from openinspect.integrations.steps import one_line, tool_detail
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.store.feed import FeedBatch
from openinspect.store.linear import LinearSession

CONSUMER = "linear_activities"
FEED_TYPES = ("prompt-started", "prompt-finished", "agent-text", "tool-call", "pr-opened")
ACTIONS_PER_MINUTE = 10
LAST_TEXT_MAX_CHARS = 4_000
STOPPED = "Stopped as asked."
WINDOW = timedelta(minutes=1)


class ActivityState(BaseModel):
    """What the projection remembers of one agent session (``linear_sessions.state``)."""

    model_config = ConfigDict(extra="ignore")

    prompt_id: str | None = None
    last_text: str = ""
    pr_url: str | None = None
    pr_number: int | None = None
    window_start: datetime | None = None
    window_actions: int = 0
    skipped: int = 0
    """Tool calls of the current minute not shown (over the cap)."""


def links(settings: Settings, session_id: str, pr_url: str | None = None) -> list[dict[str, str]]:
    """The agent session's external links: the web view, and the pull request once open."""
    found = [{"label": "openinspect session", "url": session_url(settings, session_id)}]
    if pr_url:
        found.append({"label": "Pull request", "url": pr_url})
    return found


def final_body(state: ActivityState) -> str:
    text = state.last_text.strip() or "Done."
    if state.pr_url:
        text += f"\n\nPull request: {state.pr_url}"
    return text


def error_body(code: str, settings: Settings, session_id: str) -> str:
    return (
        f"I couldn't finish this (error code: {code}). "
        f"The session has the details: {session_url(settings, session_id)}"
    )


class _Tracked:
    __slots__ = ("changed", "row", "state")

    def __init__(self, row: LinearSession) -> None:
        self.row = row
        self.state = ActivityState.model_validate(row.state)
        self.changed = False


class LinearOutbound:
    """The ``linear_activities`` feed handler (see the module docstring)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    @property
    def projection(self) -> Projection:
        return Projection(CONSUMER, self.on_feed, FEED_TYPES)

    async def on_feed(self, batch: FeedBatch, conn: AsyncConnection) -> None:
        tracked: dict[str, _Tracked | None] = {}
        for entry in batch.entries:
            event = entry.event
            if event.session_id not in tracked:
                row = await self._store.linear.by_session(event.session_id, conn=conn)
                tracked[event.session_id] = _Tracked(row) if row is not None else None
            found = tracked[event.session_id]
            if found is not None:
                await self._apply(conn, found, event)
        for found in tracked.values():
            if found is not None and found.changed:
                await self._store.linear.save_state(
                    conn, found.row.agent_session_id, found.state.model_dump(mode="json")
                )

    async def _apply(self, conn: AsyncConnection, tracked: _Tracked, event: Event) -> None:
        state = tracked.state
        tracked.changed = True
        match event.type:
            case "prompt-started":
                state.prompt_id, state.last_text = event.prompt_id, ""
            case "agent-text":
                if event.prompt_id == state.prompt_id or state.prompt_id is None:
                    state.last_text = activities.cut(event.text, LAST_TEXT_MAX_CHARS)
            case "tool-call":
                assert isinstance(event, ToolCall)
                await self._action(conn, tracked, event)
            case "pr-opened":
                if state.pr_url != event.url:
                    state.pr_url, state.pr_number = event.url, event.number
                    await self._links(conn, tracked, event.number)
            case "prompt-finished":
                assert isinstance(event, PromptFinished)
                await self._skipped(conn, tracked, f"{event.seq}:more")
                await self._final(conn, tracked, event)
            case _:
                tracked.changed = False

    async def _post(
        self, conn: AsyncConnection, tracked: _Tracked, key: str, content: dict[str, object]
    ) -> None:
        row = tracked.row
        await activities.post_activity(
            self._store,
            conn,
            key=key,
            org_id=row.org_id,
            agent_session_id=row.agent_session_id,
            content=content,
            ephemeral=content["type"] == "action",
            session_id=row.session_id,
        )

    async def _action(self, conn: AsyncConnection, tracked: _Tracked, event: ToolCall) -> None:
        state = tracked.state
        if state.window_start is None or event.ts - state.window_start >= WINDOW:
            await self._skipped(conn, tracked, f"{event.seq}:more")
            state.window_start, state.window_actions = event.ts, 0
        if state.window_actions >= ACTIONS_PER_MINUTE:
            state.skipped += 1
            return
        state.window_actions += 1
        detail = tool_detail(event.tool, event.args, activities.PARAMETER_MAX_CHARS)
        key = f"act:{tracked.row.agent_session_id}:{event.seq}"
        await self._post(conn, tracked, key, activities.action(event.tool, detail or event.tool))

    async def _skipped(self, conn: AsyncConnection, tracked: _Tracked, suffix: str) -> None:
        """Say the tool calls over the cap, in one action, and start counting again."""
        state = tracked.state
        if state.skipped:
            count, state.skipped = state.skipped, 0
            noun = "tool call" if count == 1 else "tool calls"
            key = f"act:{tracked.row.agent_session_id}:{suffix}"
            await self._post(conn, tracked, key, activities.action("more", f"{count} {noun}"))

    async def _links(self, conn: AsyncConnection, tracked: _Tracked, number: int) -> None:
        row = tracked.row
        if row.session_id is None:
            return
        await activities.set_links(
            self._store,
            conn,
            key=f"urls:{row.agent_session_id}:pr:{number}",
            org_id=row.org_id,
            agent_session_id=row.agent_session_id,
            links=links(self._settings, row.session_id, tracked.state.pr_url),
            session_id=row.session_id,
        )

    async def _final(self, conn: AsyncConnection, tracked: _Tracked, event: PromptFinished) -> None:
        state, row = tracked.state, tracked.row
        key = f"final:{event.prompt_id or event.seq}"
        if event.status == "success":
            content = activities.message("response", final_body(state))
        elif event.status in ("stopped", "cancelled"):
            content = activities.message("response", STOPPED)
        else:
            code = event.error.code if event.error is not None else event.status
            session_id = row.session_id or event.session_id
            content = activities.message(
                "error", error_body(one_line(code)[:64], self._settings, session_id)
            )
        await self._post(conn, tracked, key, content)
