"""The automation engine: a firing becomes a run, a run becomes a session, its prompt's end the
run's outcome.

API (for the webhook, Sentry and GitHub doors, the scheduler, REST and the CLI)
-------------------------------------------------------------------------------
``fire(automation_id, *, trigger, key, payload=None, context=None, fire_time=None,
origin_ref=None) -> AutomationRun``
    Record a firing and start it. Idempotent on ``(automation_id, key)``: a second call with the
    key (any task, any replica) returns the run the first one made, whatever its status, and
    starts nothing. A key longer than ``RUN_KEY_MAX`` is replaced by its sha256. ``payload`` is
    only digested (``payload_digest``); ``context`` is text the caller built for the agent (for
    webhooks: the delimited untrusted payload block), appended after the instructions. While
    another run is active the policy decides: ``queue`` → the run waits (``queued``, ``reason``
    says for what) and starts when the active one ends; ``skip`` → it is ``skipped`` with the
    reason. A paused automation records non-manual firings as ``skipped``. Otherwise the
    session starts through the one command path, ``CommandHandler.handle(run_as,
    StartSession(…), origin=<trigger kind>)``, titled ``[Auto] <name>``, with
    ``idempotency_key="automation:<run id>"`` (a retried start makes no second session) and
    ``origin_ref`` ``automation:<automation id>`` (the caller's ``origin_ref`` — a pull request,
    a Sentry issue, a ticket — is kept on the run). A start the server
    refuses (repo gone, user removed, prompt too long) finishes the run ``failed`` with the
    error's code; it counts towards the auto-pause.

``follow_up(automation_id, *, session_id, key, content, trigger, payload=None,
origin_ref=None, when_busy="queue") -> AutomationRun``
    A firing that prompts an existing session instead of starting one ("one Sentry issue, one
    session", "a failed check → a prompt in the PR's session"). Also a run, idempotent on its
    key, with ``follow_up=True`` and the session's id; ``content`` is the whole prompt (the
    session has the instructions already). ``when_busy="skip"``: while the session has a
    queued or running prompt the run is ``skipped`` ("nothing while it runs"); ``queue``: the
    prompt joins the session's queue. It does not take the automation's slot (the session's
    prompt queue orders it). ``run_as`` must be able to see the session, or the run fails
    ``session_not_found``.

``run_now(automation_id) -> AutomationRun``
    A manual firing (trigger ``manual``, a fresh key): works while paused, leaves
    ``next_run_at`` alone; ``AutomationBusy`` (409) when a run is active and the policy is skip.

``pause`` / ``resume``, ``tick`` (the scheduler's pass), ``recover`` (repairs after a crash) and
``on_feed`` (the ``automation_runs`` feed consumer's handler) complete it.

Outcomes
--------
Every session prompt an automation sends carries ``client_request_id="automation:<run id>"``.
The consumer of the global event feed (``services.automation_runs``, cursor
``automation_runs``) links the run to its prompt on ``prompt-queued``, marks it ``running`` on
``prompt-started`` and ``succeeded`` / ``failed`` on ``prompt-finished`` (or
``prompt-cancelled``), counting the outcome and freeing the slot in the same transaction as the
cursor move (``store.automations``); so outcomes survive crashes and several replicas. After the
commit the next queued run, if any, starts. Three failed runs in a row pause the automation
with the reason; a success resets the count; skipped runs are neutral.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncConnection

from openinspect.automations import schedule as schedules
from openinspect.domain.automations import (
    ACTIVE_RUN_STATUSES,
    REASON_MAX,
    RUN_KEY_MAX,
    RUN_ORIGIN_REF_PREFIX,
    Automation,
    AutomationRun,
    ConcurrencyPolicy,
    RunStatus,
    RunTrigger,
    ScheduleTrigger,
    TriggerKind,
)
from openinspect.domain.commands import TITLE_MAX, StartSession, SubmitPrompt
from openinspect.domain.events import PromptFinished, utcnow
from openinspect.domain.ids import new_id
from openinspect.domain.models import (
    ORIGIN_REF_MAX_CHARS,
    UNFINISHED_PROMPT_STATUSES,
    SessionOrigin,
    User,
)
from openinspect.errors import (
    AutomationBusy,
    AutomationNotFound,
    OpenInspectError,
    OwnerUnreachable,
    ScheduleInvalid,
    StoreUnavailable,
)
from openinspect.sessions.commands import CommandHandler
from openinspect.store import Store
from openinspect.store.automations import record_outcome_on, set_run_on
from openinspect.store.feed import FeedBatch
from openinspect.store.tables import automation_runs

log = logging.getLogger(__name__)

CONSUMER = "automation_runs"
"""The feed cursor of the run-outcome consumer."""
REQUEST_PREFIX = "automation:"
"""``client_request_id`` of every prompt a run sends: ``automation:<run id>``."""
TITLE_PREFIX = "[Auto] "
TICK_LIMIT = 25
"""Due schedules fired per scheduler pass (the rest wait for the next pass)."""
STALE_START = timedelta(minutes=5)
"""A run ``starting`` this long without a prompt is started again (idempotently) by
``recover``: its starter crashed."""
ORIGINS: dict[TriggerKind, SessionOrigin] = {
    "schedule": "schedule",
    "webhook": "webhook",
    "sentry": "sentry",
    "github": "github",
}
_RETRYABLE = (StoreUnavailable, OwnerUnreachable)
"""Failures of the server, not of the run: the run stays ``starting`` and ``recover`` retries."""
_LIVE: Sequence[RunStatus] = ACTIVE_RUN_STATUSES
_ANY: Sequence[RunStatus] = ("queued", "skipped", "starting", "running", "succeeded", "failed")


def run_key(key: str) -> str:
    """``key`` as stored: itself, or ``sha256:<hex>`` when it is too long."""
    if len(key) <= RUN_KEY_MAX:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def payload_digest(payload: JsonValue | None) -> str | None:
    """sha256 (hex) of ``payload``'s canonical JSON (sorted keys, no spaces)."""
    if payload is None:
        return None
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def request_id(run_id: str) -> str:
    return REQUEST_PREFIX + run_id


def prompt_of(automation: Automation, context: str | None) -> str:
    """The first prompt of a run's session: the instructions, then the trigger's context."""
    if not context:
        return automation.instructions
    return f"{automation.instructions}\n\n{context}"


def next_run_at(automation: Automation, now: datetime) -> datetime | None:
    """The schedule's next fire time after ``now`` (None for other triggers, or paused)."""
    if automation.paused or not isinstance(automation.trigger, ScheduleTrigger):
        return None
    return schedules.of(automation.trigger, now=now).next_after(now)


@dataclass(frozen=True)
class Tick:
    """What one scheduler pass did."""

    fired: list[AutomationRun]
    failed: list[str]
    """Automations whose firing raised (logged; retried on the next pass)."""


class AutomationEngine:
    """See the module docstring. ``now`` is the clock (tests drive it)."""

    def __init__(
        self,
        store: Store,
        commands: CommandHandler,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.commands = commands
        self.now = now
        self._finished: set[str] = set()
        """Automations whose run the feed consumer finished: start their next queued run."""

    async def open(self) -> None:
        """Create the outcome consumer's cursor at the feed's end, before any run can start
        (so none of their events is before it)."""
        await self.store.feed.cursor(CONSUMER, start="end")

    async def get(self, automation_id: str) -> Automation:
        found = await self.store.automations.get(automation_id)
        if found is None:
            raise AutomationNotFound(
                f"No automation {automation_id!r}", hint="List them with GET /api/automations"
            )
        return found

    # --- firing ---

    async def fire(
        self,
        automation_id: str,
        *,
        trigger: RunTrigger,
        key: str,
        payload: JsonValue | None = None,
        context: str | None = None,
        fire_time: datetime | None = None,
        origin_ref: str | None = None,
    ) -> AutomationRun:
        """Record a firing and start its run (see the module docstring)."""
        automation, key, existing = await self._lookup(automation_id, key)
        if existing is not None:
            return existing
        run = self._new_run(
            automation,
            trigger=trigger,
            key=key,
            status="queued" if automation.concurrency == "queue" else "starting",
            payload=payload,
            origin_ref=origin_ref,
            context=context,
            fire_time=fire_time,
        )
        if automation.paused and trigger != "manual":
            run = run.model_copy(
                update={
                    "status": "skipped",
                    "reason": f"the automation is paused: {automation.paused_reason or ''}",
                    "finished_at": run.created_at,
                }
            )
        run, created = await self.store.automations.insert_run(run)
        if not created or run.status == "skipped":
            return run
        if await self.store.automations.take_slot(automation_id, run.id):
            return await self._start_then_drain(automation, run)
        held = await self.store.automations.slot(automation_id)
        if automation.concurrency == "skip":
            skipped = await self.store.automations.set_run(
                run.id,
                ["starting"],
                status="skipped",
                reason=f"run {held or '(finishing)'} of this automation was still active",
                finished_at=self.now(),
            )
            return skipped or await self._reread(run)
        waiting = await self.store.automations.set_run(
            run.id, ["queued"], reason=f"waiting for run {held or '(finishing)'} to finish"
        )
        if held is None:  # the active run ended between our try and now: start it ourselves
            await self.drain(automation_id)
        return waiting or await self._reread(run)

    async def run_now(self, automation_id: str) -> AutomationRun:
        """A manual firing; see the module docstring."""
        automation = await self.get(automation_id)
        held = await self.store.automations.slot(automation_id)
        if held is not None and automation.concurrency == "skip":
            raise AutomationBusy(
                f"Run {held} of this automation is still active",
                hint="Wait for it to finish, or set the automation's concurrency to 'queue'",
            )
        return await self.fire(automation_id, trigger="manual", key=f"manual:{new_id('man')}")

    async def follow_up(
        self,
        automation_id: str,
        *,
        session_id: str,
        key: str,
        content: str,
        trigger: RunTrigger,
        payload: JsonValue | None = None,
        origin_ref: str | None = None,
        when_busy: ConcurrencyPolicy = "queue",
    ) -> AutomationRun:
        """A follow-up prompt into ``session_id``; see the module docstring."""
        automation, key, existing = await self._lookup(automation_id, key)
        if existing is not None:
            return existing
        run = self._new_run(
            automation,
            trigger=trigger,
            key=key,
            status="starting",
            payload=payload,
            origin_ref=origin_ref,
            context=content,
            session_id=session_id,
            follow_up=True,
        )
        run, created = await self.store.automations.insert_run(run)
        if not created:
            return run
        why = None
        if automation.paused and trigger != "manual":
            why = f"the automation is paused: {automation.paused_reason or ''}"
        elif when_busy == "skip" and await self._session_busy(session_id):
            why = f"session {session_id} is still working on a prompt"
        if why is not None:
            skipped = await self.store.automations.set_run(
                run.id, ["starting"], status="skipped", reason=why, finished_at=self.now()
            )
            return skipped or await self._reread(run)
        user = await self._run_as(automation, run)
        if user is None:
            return await self._reread(run)
        command = SubmitPrompt(
            session_id=session_id, content=content, client_request_id=request_id(run.id)
        )
        try:
            prompt = await self.commands.handle(
                user, command, origin=ORIGINS[automation.trigger.kind]
            )
        except _RETRYABLE:
            raise
        except OpenInspectError as exc:
            return await self._fail(run, exc.code, exc.message)
        linked = await self.store.automations.set_run(run.id, _ANY, prompt_id=prompt.id)
        return linked or await self._reread(run)

    async def skip(
        self,
        automation_id: str,
        *,
        trigger: RunTrigger,
        key: str,
        reason: str,
        payload: JsonValue | None = None,
        origin_ref: str | None = None,
        follow_up: bool = False,
    ) -> AutomationRun:
        """Record a firing the door decided not to act on (a cap reached, say) as a
        ``skipped`` run with ``reason``. Idempotent on the key like ``fire``: a run already
        made with it is returned as it is."""
        automation, key, existing = await self._lookup(automation_id, key)
        if existing is not None:
            return existing
        now = self.now()
        run = self._new_run(
            automation,
            trigger=trigger,
            key=key,
            status="skipped",
            payload=payload,
            origin_ref=origin_ref,
            reason=reason[:REASON_MAX],
            finished_at=now,
            follow_up=follow_up,
        )
        run, _ = await self.store.automations.insert_run(run)
        return run

    async def drain(self, automation_id: str) -> AutomationRun | None:
        """Start the automation's oldest queued run if its slot is free (and it is not
        paused); the run started, if any."""
        started = None
        while True:
            automation = await self.store.automations.get(automation_id)
            if automation is None or automation.paused:
                return started
            queued = await self.store.automations.oldest_queued(automation_id)
            if queued is None or not await self.store.automations.take_slot(
                automation_id, queued.id
            ):
                return started
            started = await self._start(automation, queued)
            if started.status != "failed":  # a failed start freed the slot: try the next one
                return started

    async def _start_then_drain(self, automation: Automation, run: AutomationRun) -> AutomationRun:
        started = await self._start(automation, run)
        if started.status == "failed":
            await self.drain(automation.id)
        return started

    async def _start(self, automation: Automation, run: AutomationRun) -> AutomationRun:
        """Start the session of ``run``, which holds the automation's slot."""
        moved = await self.store.automations.set_run(
            run.id, ["queued", "starting"], status="starting", reason=None
        )
        if moved is None:  # finished meanwhile (another replica's recovery, say)
            return await self._reread(run)
        user = await self._run_as(automation, moved)
        if user is None:
            return await self._reread(run)
        command = StartSession(
            repo=automation.repo,
            base_branch=automation.base_branch,
            model=automation.model,
            effort=automation.effort,
            title=(TITLE_PREFIX + automation.name)[:TITLE_MAX],
            prompt=prompt_of(automation, moved.context),
            client_request_id=request_id(run.id),
            idempotency_key=request_id(run.id),
            # The session names its automation (the web app and the CLI link to it); what
            # outside fired it (a PR, a Sentry issue, the caller's ref) stays on the run.
            origin_ref=RUN_ORIGIN_REF_PREFIX + automation.id,
        )
        try:
            started = await self.commands.handle(
                user, command, origin=ORIGINS[automation.trigger.kind]
            )
        except _RETRYABLE:
            raise  # the run stays starting; ``recover`` starts it again (same session)
        except OpenInspectError as exc:
            return await self._fail(moved, exc.code, exc.message)
        linked = await self.store.automations.set_run(
            run.id,
            _ANY,
            session_id=started.session.id,
            prompt_id=started.prompt.id if started.prompt is not None else None,
        )
        return linked or await self._reread(run)

    async def _run_as(self, automation: Automation, run: AutomationRun) -> User | None:
        user = await self.store.users.get(automation.run_as)
        if user is None:
            await self._fail(
                run, "run_as_missing", f"the user it runs as ({automation.run_as}) no longer exists"
            )
        return user

    async def _fail(self, run: AutomationRun, code: str, message: str) -> AutomationRun:
        failed, paused = await self.store.automations.finish_run(
            run.id, _LIVE, failed=True, error_code=code[:64], reason=message
        )
        if paused is not None:
            log.warning("automation %s paused: %s", paused.id, paused.paused_reason)
        return failed or await self._reread(run)

    async def _session_busy(self, session_id: str) -> bool:
        return await self.store.prompts.count(session_id, UNFINISHED_PROMPT_STATUSES) > 0

    async def _reread(self, run: AutomationRun) -> AutomationRun:
        return await self.store.automations.get_run(run.id) or run

    async def _lookup(
        self, automation_id: str, key: str
    ) -> tuple[Automation, str, AutomationRun | None]:
        """The automation, the key as stored, and the run already made with it, if any."""
        automation = await self.get(automation_id)
        key = run_key(key)
        return automation, key, await self.store.automations.run_by_key(automation_id, key)

    def _new_run(
        self,
        automation: Automation,
        *,
        trigger: RunTrigger,
        key: str,
        status: RunStatus,
        payload: JsonValue | None,
        origin_ref: str | None,
        **fields: Any,
    ) -> AutomationRun:
        return AutomationRun(
            id=new_id("arn"),
            automation_id=automation.id,
            trigger=trigger,
            key=key,
            status=status,
            payload_digest=payload_digest(payload),
            origin_ref=origin_ref[:ORIGIN_REF_MAX_CHARS] if origin_ref else None,
            created_at=self.now(),
            **fields,
        )

    # --- pause and resume ---

    async def pause(self, automation_id: str, reason: str) -> Automation:
        await self.get(automation_id)
        paused = await self.store.automations.set_paused(
            automation_id, paused=True, reason=reason, next_run_at=None
        )
        if paused is None:
            raise AutomationNotFound(f"No automation {automation_id!r}")
        return paused

    async def resume(self, automation_id: str) -> Automation:
        """Unpause: the failure count is reset, the next fire time computed from now (missed
        slots are not caught up), and a queued run starts."""
        automation = await self.get(automation_id)
        upcoming = next_run_at(automation.model_copy(update={"paused": False}), self.now())
        resumed = await self.store.automations.set_paused(
            automation_id, paused=False, reason=None, next_run_at=upcoming
        )
        if resumed is None:
            raise AutomationNotFound(f"No automation {automation_id!r}")
        await self.drain(automation_id)
        return resumed

    # --- the scheduler's pass ---

    async def tick(self) -> Tick:
        """Fire every due schedule once, for its latest slot up to now (after downtime: once,
        not once per missed slot), then move its ``next_run_at`` to the next slot after now.
        Replicas racing on one slot make one run (its key is ``schedule:<fire time ISO>``)."""
        now = self.now()
        fired: list[AutomationRun] = []
        failed: list[str] = []
        for automation in await self.store.automations.due(now, TICK_LIMIT):
            due_at = automation.next_run_at
            assert due_at is not None
            assert isinstance(automation.trigger, ScheduleTrigger)
            try:
                schedule = schedules.of(automation.trigger, now=now)
            except ScheduleInvalid as exc:  # e.g. a zone that a tzdata update removed
                await self.pause(automation.id, f"its schedule no longer works: {exc.message}")
                continue
            slot = schedule.latest_at_or_before(now, due_at - timedelta(microseconds=1))
            slot = slot or due_at
            try:
                fired.append(
                    await self.fire(
                        automation.id,
                        trigger="schedule",
                        key=f"schedule:{slot.isoformat()}",
                        fire_time=slot,
                    )
                )
            except Exception:
                log.exception("automation %s: firing its %s slot failed", automation.id, slot)
                failed.append(automation.id)
                continue  # next_run_at stays: the next pass fires the slot again (same key)
            await self.store.automations.advance(
                automation.id, expected=due_at, next_run_at=schedule.next_after(now)
            )
        return Tick(fired, failed)

    async def recover(self) -> None:
        """Repair what a crash left behind: slots held by finished runs, runs left starting,
        queued runs behind a free slot. Every step is safe to run on several replicas."""
        automations = self.store.automations
        for automation_id, run_id in await automations.stuck_slots():
            await automations.free_slot(automation_id, run_id)
        for run in await automations.stale_starting(self.now() - STALE_START):
            automation = await automations.get(run.automation_id)
            if automation is None:
                continue
            if run.follow_up:
                await self._fail(run, "interrupted", "the server stopped while it was prompting")
            elif await automations.slot(automation.id) in (None, run.id):
                await automations.take_slot(automation.id, run.id)
                await self._start_then_drain(automation, run)
        for automation_id in await automations.waiting():
            await self.drain(automation_id)

    # --- outcomes, from the event feed ---

    async def on_feed(self, batch: FeedBatch, conn: AsyncConnection) -> None:
        """The ``automation_runs`` consumer's handler (``sessions.feed``): link, start and
        finish runs from their prompts' events on the claim's transaction."""
        for entry in batch.entries:
            event = entry.event
            if event.prompt_id is None:
                continue
            by_prompt = automation_runs.c.prompt_id == event.prompt_id
            if event.type == "prompt-queued":
                asked = event.client_request_id or ""
                if asked.startswith(REQUEST_PREFIX):
                    await set_run_on(
                        conn,
                        automation_runs.c.id == asked.removeprefix(REQUEST_PREFIX),
                        _ANY,
                        {"session_id": event.session_id, "prompt_id": event.prompt_id},
                    )
            elif event.type == "prompt-started":
                await set_run_on(
                    conn, by_prompt, ["starting"], {"status": "running", "started_at": event.ts}
                )
            elif event.type in ("prompt-finished", "prompt-cancelled"):
                failed, code, reason = _outcome(event)
                values = {
                    "status": "failed" if failed else "succeeded",
                    "finished_at": event.ts,
                    "error_code": code,
                    "reason": reason,
                }
                for run in await set_run_on(conn, by_prompt, ["starting", "running"], values):
                    paused = await record_outcome_on(conn, run, failed=failed)
                    if paused is not None:
                        log.warning("automation %s paused: %s", paused.id, paused.paused_reason)
                    self._finished.add(run.automation_id)

    async def after_feed(self) -> None:
        """Start the next queued runs of the automations whose runs ``on_feed`` finished
        (called once the batch committed)."""
        finished, self._finished = self._finished, set()
        for automation_id in sorted(finished):
            await self.drain(automation_id)


def _outcome(event: object) -> tuple[bool, str | None, str | None]:
    """``(failed, error code, reason)`` of a prompt-finished or prompt-cancelled event."""
    if not isinstance(event, PromptFinished):
        return True, "cancelled", "its prompt was cancelled before it ran"
    if event.status == "success":
        return False, None, None
    if event.error is not None:
        return True, event.error.code, event.error.message
    return True, event.status, f"its prompt ended {event.status}"
