"""Automations and their runs.

Two guarantees live in the database, so they hold across tasks, processes and replicas:

- **One run per firing.** ``automation_runs`` is unique on ``(automation_id, key)``;
  ``insert_run`` is an ``INSERT … ON CONFLICT DO NOTHING`` (both dialects), and a firing that
  loses reads the winner's run back. 500 parallel deliveries of one key make one row.
- **One run at a time.** ``automations.active_run_id`` is the automation's slot, taken with a
  conditional update (``take_slot``: only while it is NULL) and freed only by the run holding it
  (``free_slot``), so two firings with different keys never both start a session.

Run outcomes are written by the ``automation_runs`` feed consumer inside its claim's transaction
(the ``*_on`` functions take the caller's connection), so an outcome, the failure counter, the
auto-pause and the freed slot commit together with the cursor or not at all.

The webhook or Sentry secret is sealed (``store.crypto.Sealer``, purpose
``automation:<id>:secret``) and only ``secret`` opens it.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openinspect.domain.automations import (
    AUTO_PAUSE_AFTER,
    FINISHED_RUN_STATUSES,
    PAUSED_REASON_MAX,
    REASON_MAX,
    Automation,
    AutomationRun,
    Condition,
    RunStatus,
    Trigger,
)
from openinspect.domain.events import utcnow
from openinspect.errors import ConfigError
from openinspect.store.crypto import Sealer
from openinspect.store.tables import automation_runs, automations

_TRIGGER: TypeAdapter[Trigger] = TypeAdapter(Trigger)
_CONDITIONS: TypeAdapter[list[Condition]] = TypeAdapter(list[Condition])
_EDITABLE = (
    "name",
    "repo",
    "base_branch",
    "model",
    "effort",
    "instructions",
    "concurrency",
    "run_as",
    "next_run_at",
)


def _purpose(automation_id: str) -> str:
    return f"automation:{automation_id}:secret"


def _row_of(automation: Automation) -> dict[str, Any]:
    values = automation.model_dump(exclude={"trigger", "conditions"})
    values["trigger_kind"] = automation.trigger.kind
    values["trigger"] = _TRIGGER.dump_json(automation.trigger).decode()
    values["conditions"] = _CONDITIONS.dump_json(automation.conditions).decode()
    return values


def _automation(row: sa.Row[Any]) -> Automation:
    m = row._mapping
    return Automation(
        id=m["id"],
        name=m["name"],
        repo=m["repo"],
        base_branch=m["base_branch"],
        model=m["model"],
        effort=m["effort"],
        instructions=m["instructions"],
        trigger=_TRIGGER.validate_json(m["trigger"]),
        conditions=_CONDITIONS.validate_json(m["conditions"]),
        concurrency=m["concurrency"],
        paused=m["paused"],
        paused_reason=m["paused_reason"],
        consecutive_failures=m["consecutive_failures"],
        run_as=m["run_as"],
        created_by=m["created_by"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        next_run_at=m["next_run_at"],
    )


def _run(row: sa.Row[Any]) -> AutomationRun:
    return AutomationRun.model_validate(dict(row._mapping))


_AUTOMATION_COLUMNS = [c for c in automations.c if c.name not in ("secret_enc", "active_run_id")]


def _select_automations() -> sa.Select[Any]:
    return sa.select(*_AUTOMATION_COLUMNS)


def _newest_first(query: sa.Select[Any], table: sa.Table, before: str | None) -> sa.Select[Any]:
    """``query`` ordered newest first by ``(created_at, id)``, after the row ``before`` (an id
    of ``table``) when given: keyset pagination, stable while rows are added."""
    if before is not None:
        anchor = sa.select(table.c.created_at).where(table.c.id == before).scalar_subquery()
        query = query.where(
            sa.or_(
                table.c.created_at < anchor,
                sa.and_(table.c.created_at == anchor, table.c.id < before),
            )
        )
    return query.order_by(table.c.created_at.desc(), table.c.id.desc())


async def free_slot_on(conn: AsyncConnection, automation_id: str, run_id: str) -> bool:
    """Free the automation's slot if ``run_id`` holds it."""
    result = await conn.execute(
        automations.update()
        .where(automations.c.id == automation_id, automations.c.active_run_id == run_id)
        .values(active_run_id=None)
    )
    return result.rowcount == 1


async def record_outcome_on(
    conn: AsyncConnection, run: AutomationRun, *, failed: bool
) -> Automation | None:
    """Count a finished run in its automation, on the caller's transaction: a success resets the
    failure counter, a failure raises it and, at ``AUTO_PAUSE_AFTER`` in a row, pauses the
    automation with the reason; either way the run's slot is freed. Returns the automation
    paused by this outcome, if any."""
    await free_slot_on(conn, run.automation_id, run.id)
    where = automations.c.id == run.automation_id
    if not failed:
        await conn.execute(automations.update().where(where).values(consecutive_failures=0))
        return None
    counted = await conn.execute(
        automations.update()
        .where(where)
        .values(consecutive_failures=automations.c.consecutive_failures + 1)
        .returning(automations.c.consecutive_failures, automations.c.paused)
    )
    row = counted.first()
    if row is None or row.paused or row.consecutive_failures < AUTO_PAUSE_AFTER:
        return None
    last = run.error_code or "failed"
    if run.reason:
        last = f"{last}: {run.reason}"
    reason = f"paused after {row.consecutive_failures} failed runs in a row; last error: {last}"
    paused = await conn.execute(
        automations.update()
        .where(where, automations.c.paused == sa.false())
        .values(paused=True, paused_reason=reason[:PAUSED_REASON_MAX], next_run_at=None)
        .returning(*_AUTOMATION_COLUMNS)
    )
    found = paused.first()
    return _automation(found) if found is not None else None


async def set_run_on(
    conn: AsyncConnection,
    where: sa.ColumnElement[bool],
    from_statuses: Sequence[RunStatus],
    values: dict[str, Any],
) -> list[AutomationRun]:
    """Move the runs matching ``where`` that are in one of ``from_statuses`` (a transition
    guard: a finished run never moves again); the runs as they are now."""
    if "reason" in values and values["reason"] is not None:
        values = {**values, "reason": values["reason"][:REASON_MAX]}
    result = await conn.execute(
        automation_runs.update()
        .where(where, automation_runs.c.status.in_(list(from_statuses)))
        .values(**values)
        .returning(*automation_runs.c)
    )
    return [_run(row) for row in result.all()]


class AutomationStore:
    def __init__(self, engine: AsyncEngine, sealer: Sealer | None = None) -> None:
        self._engine = engine
        self._sealer = sealer
        self._dialect = postgresql if engine.dialect.name == "postgresql" else sqlite

    def _seal(self, automation_id: str, secret: str | None) -> str | None:
        if secret is None:
            return None
        if self._sealer is None:
            raise ConfigError("The store was opened without an encryption key for secrets")
        return self._sealer.seal(secret, _purpose(automation_id))

    # --- automations ---

    async def create(self, automation: Automation, *, secret: str | None = None) -> None:
        """Store a new automation, with its webhook or Sentry secret sealed."""
        values = _row_of(automation) | {"secret_enc": self._seal(automation.id, secret)}
        async with self._engine.begin() as conn:
            await conn.execute(automations.insert().values(**values))

    async def get(self, automation_id: str) -> Automation | None:
        query = _select_automations().where(automations.c.id == automation_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _automation(row) if row is not None else None

    async def secret(self, automation_id: str) -> str | None:
        """The automation's secret in clear (for signature checks only), if it has one."""
        query = sa.select(automations.c.secret_enc).where(automations.c.id == automation_id)
        async with self._engine.connect() as conn:
            sealed = (await conn.execute(query)).scalar_one_or_none()
        if sealed is None:
            return None
        if self._sealer is None:
            raise ConfigError("The store was opened without an encryption key for secrets")
        return self._sealer.open(sealed, _purpose(automation_id))

    async def with_secret(self, automation_id: str) -> tuple[Automation, str | None] | None:
        """The automation and its secret in clear, read together (one query: a webhook door
        answers an unknown id after the same work as a known one); None when there is none."""
        query = sa.select(*_AUTOMATION_COLUMNS, automations.c.secret_enc).where(
            automations.c.id == automation_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        sealed = row._mapping["secret_enc"]
        automation = _automation(row)  # type: ignore[arg-type]  # the columns plus one
        if sealed is None:
            return automation, None
        if self._sealer is None:
            raise ConfigError("The store was opened without an encryption key for secrets")
        return automation, self._sealer.open(sealed, _purpose(automation_id))

    async def set_secret(self, automation_id: str, secret: str) -> bool:
        """Replace the secret (rotation); False when there is no such automation."""
        sealed = self._seal(automation_id, secret)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                automations.update()
                .where(automations.c.id == automation_id)
                .values(secret_enc=sealed, updated_at=utcnow())
            )
        return result.rowcount == 1

    async def list(
        self, *, owner_id: str | None = None, limit: int = 50, before: str | None = None
    ) -> builtins.list[Automation]:
        """Newest first. ``owner_id``: only those it created or runs as (a member's view);
        ``before``: the page after the automation with that id."""
        query = _select_automations()
        if owner_id is not None:
            query = query.where(
                sa.or_(automations.c.created_by == owner_id, automations.c.run_as == owner_id)
            )
        query = _newest_first(query, automations, before)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.limit(limit))).all()
        return [_automation(row) for row in rows]

    async def update(self, automation: Automation) -> Automation | None:
        """Write the editable fields, the trigger and the conditions of ``automation`` (not its
        pause state, counter or secret); None when it no longer exists."""
        values = {k: v for k, v in _row_of(automation).items() if k in _EDITABLE}
        values |= {
            "trigger": _TRIGGER.dump_json(automation.trigger).decode(),
            "conditions": _CONDITIONS.dump_json(automation.conditions).decode(),
            "updated_at": utcnow(),
        }
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    automations.update()
                    .where(automations.c.id == automation.id)
                    .values(**values)
                    .returning(*_AUTOMATION_COLUMNS)
                )
            ).first()
        return _automation(row) if row is not None else None

    async def delete(self, automation_id: str) -> bool:
        """Delete the automation and its run history."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                automations.delete().where(automations.c.id == automation_id)
            )
        return result.rowcount == 1

    async def set_paused(
        self,
        automation_id: str,
        *,
        paused: bool,
        reason: str | None,
        next_run_at: datetime | None,
    ) -> Automation | None:
        """Pause (with the reason) or resume; resuming resets the failure counter. Either way
        ``next_run_at`` is set as given (None while paused)."""
        values: dict[str, Any] = {
            "paused": paused,
            "paused_reason": reason[:PAUSED_REASON_MAX] if reason else None,
            "next_run_at": next_run_at,
            "updated_at": utcnow(),
        }
        if not paused:
            values["consecutive_failures"] = 0
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    automations.update()
                    .where(automations.c.id == automation_id)
                    .values(**values)
                    .returning(*_AUTOMATION_COLUMNS)
                )
            ).first()
        return _automation(row) if row is not None else None

    async def due(self, now: datetime, limit: int) -> builtins.list[Automation]:
        """Unpaused schedules whose ``next_run_at`` has come, the most overdue first."""
        query = (
            _select_automations()
            .where(
                automations.c.trigger_kind == "schedule",
                automations.c.paused == sa.false(),
                automations.c.next_run_at <= now,
            )
            .order_by(automations.c.next_run_at)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_automation(row) for row in (await conn.execute(query)).all()]

    async def advance(
        self, automation_id: str, *, expected: datetime, next_run_at: datetime | None
    ) -> bool:
        """Move ``next_run_at`` from ``expected`` on (False when someone moved it first)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                automations.update()
                .where(automations.c.id == automation_id, automations.c.next_run_at == expected)
                .values(next_run_at=next_run_at)
            )
        return result.rowcount == 1

    # --- the slot ---

    async def take_slot(self, automation_id: str, run_id: str) -> bool:
        """Make ``run_id`` the automation's one active run, if no run is; False otherwise."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                automations.update()
                .where(automations.c.id == automation_id, automations.c.active_run_id.is_(None))
                .values(active_run_id=run_id)
            )
        return result.rowcount == 1

    async def slot(self, automation_id: str) -> str | None:
        """The run holding the automation's slot, if one does."""
        query = sa.select(automations.c.active_run_id).where(automations.c.id == automation_id)
        async with self._engine.connect() as conn:
            held: str | None = (await conn.execute(query)).scalar_one_or_none()
        return held

    async def free_slot(self, automation_id: str, run_id: str) -> bool:
        async with self._engine.begin() as conn:
            return await free_slot_on(conn, automation_id, run_id)

    async def stuck_slots(self) -> builtins.list[tuple[str, str]]:
        """``(automation id, run id)`` of slots held by a run that finished or is gone (a
        crash between a run's end and its slot's release)."""
        runs = automation_runs.alias("held")
        query = (
            sa.select(automations.c.id, automations.c.active_run_id)
            .select_from(automations.outerjoin(runs, runs.c.id == automations.c.active_run_id))
            .where(
                automations.c.active_run_id.is_not(None),
                sa.or_(runs.c.id.is_(None), runs.c.status.in_(FINISHED_RUN_STATUSES)),
            )
        )
        async with self._engine.connect() as conn:
            return [(row[0], row[1]) for row in (await conn.execute(query)).all()]

    async def waiting(self) -> builtins.list[str]:
        """Automations with a free slot and queued runs (to start the next one)."""
        query = (
            sa.select(automation_runs.c.automation_id)
            .join(automations, automations.c.id == automation_runs.c.automation_id)
            .where(automation_runs.c.status == "queued", automations.c.active_run_id.is_(None))
            .distinct()
        )
        async with self._engine.connect() as conn:
            return [row[0] for row in (await conn.execute(query)).all()]

    # --- runs ---

    async def insert_run(self, run: AutomationRun) -> tuple[AutomationRun, bool]:
        """Record ``run`` unless its automation has a run with its key: then that run, and
        False. Safe under any number of concurrent callers (the unique key decides)."""
        values = run.model_dump()
        statement = (
            self._dialect.insert(automation_runs)
            .values(**values)
            .on_conflict_do_nothing(
                index_elements=[automation_runs.c.automation_id, automation_runs.c.key]
            )
        )
        async with self._engine.begin() as conn:
            inserted = (await conn.execute(statement)).rowcount == 1
        if inserted:
            return run, True
        existing = await self.run_by_key(run.automation_id, run.key)
        assert existing is not None  # the row that refused ours; runs go only with their owner
        return existing, False

    async def get_run(self, run_id: str) -> AutomationRun | None:
        query = sa.select(automation_runs).where(automation_runs.c.id == run_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _run(row) if row is not None else None

    async def run_by_key(self, automation_id: str, key: str) -> AutomationRun | None:
        query = sa.select(automation_runs).where(
            automation_runs.c.automation_id == automation_id, automation_runs.c.key == key
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _run(row) if row is not None else None

    async def newest_starter(self, automation_id: str, origin_ref: str) -> AutomationRun | None:
        """The newest run of the automation that was to start a session (not a follow-up) for
        ``origin_ref`` (e.g. a Sentry issue): the run whose session later firings join."""
        query = (
            sa.select(automation_runs)
            .where(
                automation_runs.c.automation_id == automation_id,
                automation_runs.c.origin_ref == origin_ref,
                automation_runs.c.follow_up == sa.false(),
            )
            .order_by(automation_runs.c.created_at.desc(), automation_runs.c.id.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _run(row) if row is not None else None

    async def runs_of_session(self, session_id: str) -> builtins.list[AutomationRun]:
        """The runs that started or prompted a session, oldest first."""
        query = (
            sa.select(automation_runs)
            .where(automation_runs.c.session_id == session_id)
            .order_by(automation_runs.c.created_at, automation_runs.c.id)
        )
        async with self._engine.connect() as conn:
            return [_run(row) for row in (await conn.execute(query)).all()]

    async def runs(
        self, automation_id: str, *, limit: int = 50, before: str | None = None
    ) -> builtins.list[AutomationRun]:
        """The automation's runs, newest first; ``before``: the page after that run."""
        query = sa.select(automation_runs).where(automation_runs.c.automation_id == automation_id)
        query = _newest_first(query, automation_runs, before)
        async with self._engine.connect() as conn:
            return [_run(row) for row in (await conn.execute(query.limit(limit))).all()]

    async def last_runs(self, automation_ids: Iterable[str]) -> dict[str, AutomationRun]:
        """Each automation's newest run (for lists)."""
        ids = sorted(set(automation_ids))
        if not ids:
            return {}
        ranked = sa.select(
            automation_runs,
            sa.func.row_number()
            .over(
                partition_by=automation_runs.c.automation_id,
                order_by=(automation_runs.c.created_at.desc(), automation_runs.c.id.desc()),
            )
            .label("rank"),
        ).where(automation_runs.c.automation_id.in_(ids))
        sub = ranked.subquery()
        query = sa.select(*[sub.c[c.name] for c in automation_runs.c]).where(sub.c.rank == 1)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row.automation_id: _run(row) for row in rows}

    async def oldest_queued(self, automation_id: str) -> AutomationRun | None:
        query = (
            sa.select(automation_runs)
            .where(
                automation_runs.c.automation_id == automation_id,
                automation_runs.c.status == "queued",
            )
            .order_by(automation_runs.c.created_at, automation_runs.c.id)
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _run(row) if row is not None else None

    async def stale_starting(self, before: datetime) -> builtins.list[AutomationRun]:
        """Runs made before ``before`` that a crash left between their slot and their session:
        ``starting`` without a prompt, or ``queued`` while holding their automation's slot."""
        holds_slot = (
            sa.select(automations.c.id)
            .where(automations.c.active_run_id == automation_runs.c.id)
            .exists()
        )
        query = sa.select(automation_runs).where(
            automation_runs.c.created_at < before,
            sa.or_(
                sa.and_(
                    automation_runs.c.status == "starting", automation_runs.c.prompt_id.is_(None)
                ),
                sa.and_(automation_runs.c.status == "queued", holds_slot),
            ),
        )
        async with self._engine.connect() as conn:
            return [_run(row) for row in (await conn.execute(query)).all()]

    async def set_run(
        self, run_id: str, from_statuses: Sequence[RunStatus], **values: Any
    ) -> AutomationRun | None:
        """Move run ``run_id`` if it is in one of ``from_statuses``; the run as it is now, or
        None when it was not in those statuses (or does not exist)."""
        async with self._engine.begin() as conn:
            moved = await set_run_on(
                conn, automation_runs.c.id == run_id, from_statuses, dict(values)
            )
        return moved[0] if moved else None

    async def finish_run(
        self, run_id: str, from_statuses: Sequence[RunStatus], *, failed: bool, **values: Any
    ) -> tuple[AutomationRun | None, Automation | None]:
        """Finish a run (``failed`` or ``succeeded``) and count it in its automation, in one
        transaction: the run, and the automation if this outcome paused it."""
        status = "failed" if failed else "succeeded"
        async with self._engine.begin() as conn:
            moved = await set_run_on(
                conn,
                automation_runs.c.id == run_id,
                from_statuses,
                {**values, "status": status, "finished_at": utcnow()},
            )
            if not moved:
                return None, None
            paused = await record_outcome_on(conn, moved[0], failed=failed)
        return moved[0], paused

    # --- for the GitHub door ---

    async def with_trigger(self, kind: str) -> builtins.list[Automation]:
        """Every automation (paused or not) whose trigger is of ``kind``, oldest first."""
        query = (
            _select_automations()
            .where(automations.c.trigger_kind == kind)
            .order_by(automations.c.created_at, automations.c.id)
        )
        async with self._engine.connect() as conn:
            return [_automation(row) for row in (await conn.execute(query)).all()]

    async def count_follow_ups(self, automation_id: str, key_prefix: str) -> int:
        """The automation's follow-up runs whose key starts with ``key_prefix`` and that were
        not skipped: the prompts it actually sent (e.g. fix attempts on one pull request)."""
        query = (
            sa.select(sa.func.count())
            .select_from(automation_runs)
            .where(
                automation_runs.c.automation_id == automation_id,
                automation_runs.c.follow_up.is_(True),
                automation_runs.c.status != "skipped",
                automation_runs.c.key.startswith(key_prefix, autoescape=True),
            )
        )
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())
