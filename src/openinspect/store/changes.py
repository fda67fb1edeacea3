"""The unit of work: a state change and the durable event that announces it, in one transaction.

A ``Change`` is one event plus what it announces: a session created (its row, its owner), a
prompt queued (its row, its author a participant) or moved to another status (with an
``only_if`` guard), columns of the session row (status, title, sandbox status), a sandbox
record's status, and the owner's lease (``fence``).
``write`` commits a batch of changes in the caller's transaction; each one's event gets the next
seq of its session from ``sessions.last_seq``, and its position in the global feed.

One owner per fact
------------------
- ``sessions.last_seq`` is the session's last seq; the events take theirs from it, here only.
- ``prompts.status`` is a prompt's status; its events are written with it, here.
- ``sessions.sandbox_status`` (and the sandbox record's status) change with ``sandbox-status``.
- ``sessions.total_cost_usd`` is the sum of the session's ``usage`` events: the append of one adds
  its ``cost_usd`` and sets its ``total_cost_usd`` from the same row update. A usage event is
  keyed by its prompt and step (``events.dedupe_key``): re-sent, it is neither stored nor counted
  again; the first one stored is the answer. Its cost goes into the spend ledger
  (``store/spend.py``) with it, under the same key.

Failures
--------
What a change checks comes before what it writes: its fence, its creation's idempotency key, its
event's key, its prompt guard, and its session row. A check that fails ends that change alone
with nothing of it written (the caller learns it: ``Refused``, ``LeaseLost``,
``NotFoundError``) and the rest of the batch goes on. An
error after a write (a constraint, the database) aborts the transaction: the caller then retries
each change alone (``EventStore.commit``), so one bad change never fails the others; changes
of one ``unit`` are retried together, so they still commit together or not at all.

Lock order, the same for every batch: leases, prompts and sandboxes of each session, its session
row (sessions by id), and last the feed head (``store/feed.py``), held until the commit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from openinspect.domain.events import Event, Usage, load_event, utcnow
from openinspect.domain.models import Prompt, PromptStatus, SandboxStatus, Session
from openinspect.errors import LeaseLost, NotFoundError
from openinspect.store import feed, spend
from openinspect.store.db import insert_once
from openinspect.store.leases import Lease, assert_held
from openinspect.store.tables import (
    conversation_messages,
    events,
    participants,
    prompts,
    sandboxes,
    session_branches,
    sessions,
)

SESSION_COLUMNS = frozenset({"status", "title", "sandbox_status"})
"""The session row's columns a change may set; ``last_seq`` and ``total_cost_usd`` are derived."""

UNFINISHED = ("queued", "running")


@dataclass(frozen=True)
class NewSession:
    """Create the session the event announces: its row and its creator as its owner. With an
    ``idempotency_key`` its creator already made a session under, the change is refused (the
    unique index decides between concurrent creates: the loser's retry finds the winner)."""

    session: Session
    idempotency_key: str | None = None
    fingerprint: str | None = None
    branch_head: str | None = None
    """Where the session's branch already is on the origin (an existing branch it was given, or
    one made for it at a start point): its push record starts there (``store.branches``)."""
    conversation: tuple[str, ...] = ()
    """The agent history it starts with (a fork's, cut from its source): stored with it."""


@dataclass(frozen=True)
class NewPrompt:
    """Queue a prompt: its row, and its author as a participant of the session."""

    prompt: Prompt
    fingerprint: str


@dataclass(frozen=True)
class PromptMove:
    """Move a prompt to ``status``; with ``only_if``, only from one of those statuses. A prompt
    not in them (or gone) refuses the change: no event either."""

    prompt_id: str
    status: PromptStatus
    only_if: tuple[PromptStatus, ...] = ()
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class NewSandbox:
    """The row of a box made before its session (a warm pool's), written when a session claims
    it: until then no row ties its token to any session."""

    session_id: str
    provider: str
    token_hash: str


@dataclass(frozen=True)
class SandboxMove:
    """Record a sandbox's new status on its own row (the session's copy is ``sandbox_status``);
    with ``new``, the row is written first (a claimed pooled box)."""

    sandbox_id: str
    status: SandboxStatus
    new: NewSandbox | None = None


@dataclass(frozen=True)
class Change:
    """One durable event and the state change it announces (see the module docstring)."""

    event: Event
    session: Mapping[str, Any] = field(default_factory=dict)
    prompt: NewPrompt | PromptMove | None = None
    new_session: NewSession | None = None
    sandbox: SandboxMove | None = None
    fence: Lease | None = None
    unit: str | None = None
    """Changes with the same ``unit`` in one batch commit together or not at all: when a batch
    is retried change by change, they are retried together (a prompt queued and its session
    turning active, say)."""

    def __post_init__(self) -> None:
        unknown = set(self.session) - SESSION_COLUMNS
        if unknown:
            raise ValueError(f"a change cannot set session columns {sorted(unknown)}")


class Appended(NamedTuple):
    event: Event
    """The event as stored: with the seq the database assigned."""
    pos: int
    """Its position in the global feed (``store/feed.py``)."""
    data: str
    """Its stored JSON (the one serialisation: the bus envelope reuses it)."""
    fresh: bool = True
    """False when a keyed event was stored before: this is that one, not published again."""


class Refused(NamedTuple):
    """A change whose guard failed (its prompt's status, its creation's key): nothing of it
    was written."""

    reason: str


Outcome = Appended | Refused | BaseException


def dedupe_key(event: Event) -> str | None:
    """What a keyed event is recorded once by: a model response's usage."""
    if isinstance(event, Usage) and event.prompt_id is not None and event.step is not None:
        return f"usage:{event.prompt_id}:{event.step}"
    return None


@dataclass
class _Item:
    index: int
    change: Change
    key: str | None
    cost: float | None
    """A usage event's cost (None for other events)."""
    seq: int = 0
    total: float | None = None


async def write(conn: AsyncConnection, changes: Sequence[Change]) -> list[Outcome]:
    """Write ``changes`` in the transaction of ``conn`` (the caller commits) and return what
    became of each, in order. Raises only on an error after a write: then nothing may commit."""
    outcomes: list[Outcome | None] = [None] * len(changes)
    by_session: dict[str, list[_Item]] = {}
    for i, change in enumerate(changes):
        by_session.setdefault(change.event.session_id, []).append(
            _Item(i, change, dedupe_key(change.event), _cost(change.event))
        )
    fences: dict[Lease, LeaseLost | None] = {}
    first_with_key: dict[tuple[str, str], int] = {}
    duplicates: list[_Item] = []
    kept: dict[str, list[_Item]] = {}
    for session_id in sorted(by_session):
        for item in by_session[session_id]:
            if item.key is not None and (session_id, item.key) in first_with_key:
                duplicates.append(item)  # re-sent within the batch: the first one answers
                continue
            outcome = await _check_and_write(conn, item, fences)
            if outcome is not None:
                outcomes[item.index] = outcome
                continue
            kept.setdefault(session_id, []).append(item)
            if item.key is not None:
                first_with_key[(session_id, item.key)] = item.index
    plain = {
        sid: items
        for sid, items in kept.items()
        if not any(i.change.session or i.cost is not None for i in items)
    }
    found = await _advance_plain(conn, plain)
    for session_id, items in kept.items():
        if session_id not in plain and await _advance_session(conn, session_id, items):
            found.add(session_id)
    written: list[_Item] = []
    for session_id, items in kept.items():
        if session_id in found:
            written.extend(items)
            continue
        missing = NotFoundError(f"Session {session_id} not found")
        for item in items:
            outcomes[item.index] = missing
    if written:
        last = await feed.reserve(conn, len(written))
        rows = []
        for n, item in enumerate(written):
            stored = _stored(item)
            data = stored.model_dump_json()
            pos = last - len(written) + 1 + n
            outcomes[item.index] = Appended(stored, pos, data)
            rows.append(
                {
                    "session_id": stored.session_id,
                    "seq": stored.seq,
                    "type": stored.type,
                    "prompt_id": stored.prompt_id,
                    "ts": stored.ts,
                    "data": data,
                    "pos": pos,
                    "dedupe_key": item.key,
                }
            )
        await conn.execute(events.insert(), rows)
        fresh_usage = [
            (item.change.event, item.key)
            for item in written
            if isinstance(item.change.event, Usage) and item.key is not None
        ]
        if fresh_usage:
            await spend.record(conn, fresh_usage)
    for item in duplicates:
        assert item.key is not None
        first = outcomes[first_with_key[(item.change.event.session_id, item.key)]]
        outcomes[item.index] = first._replace(fresh=False) if isinstance(first, Appended) else first
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


def _cost(event: Event) -> float | None:
    return event.cost_usd if isinstance(event, Usage) else None


def _stored(item: _Item) -> Event:
    update: dict[str, Any] = {"seq": item.seq}
    if item.total is not None:
        update["total_cost_usd"] = item.total
    return item.change.event.model_copy(update=update)


async def _check_and_write(
    conn: AsyncConnection, item: _Item, fences: dict[Lease, LeaseLost | None]
) -> Outcome | None:
    """The change's checks, then its prompt and sandbox writes: an outcome when the change ends
    here (nothing of it written), None when its event is to be stored."""
    change = item.change
    if change.fence is not None:
        if change.fence not in fences:  # one check per lease and transaction
            try:
                await assert_held(conn, change.fence)
                fences[change.fence] = None
            except LeaseLost as exc:
                fences[change.fence] = exc
        lost = fences[change.fence]
        if lost is not None:
            return lost
    if change.new_session is not None and not await insert_session(conn, change.new_session):
        return Refused(f"idempotency key {change.new_session.idempotency_key!r} already used")
    if item.key is not None:
        earlier = await _stored_with_key(conn, change.event.session_id, item.key)
        if earlier is not None:
            return earlier
    if isinstance(change.prompt, NewPrompt):
        await _insert_prompt(conn, change.prompt)
    elif isinstance(change.prompt, PromptMove) and not await _move_prompt(conn, change.prompt):
        return Refused(f"prompt {change.prompt.prompt_id} is not {'/'.join(change.prompt.only_if)}")
    if change.sandbox is not None:
        await _move_sandbox(conn, change.sandbox)
    return None


async def _stored_with_key(conn: AsyncConnection, session_id: str, key: str) -> Appended | None:
    query = sa.select(events.c.data, events.c.pos).where(
        events.c.session_id == session_id, events.c.dedupe_key == key
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return Appended(load_event(row.data), int(row.pos), row.data, fresh=False)


async def insert_session(conn: AsyncConnection, new: NewSession) -> bool:
    """Insert the session and its owner; False (nothing written) when its creator already made
    a session under its idempotency key."""
    session = new.session
    values = session.model_dump()
    if new.idempotency_key is not None:
        taken = sa.select(sessions.c.id).where(
            sessions.c.creator_id == session.creator_id,
            sessions.c.idempotency_key == new.idempotency_key,
        )
        if (await conn.execute(taken)).first() is not None:
            return False
        values |= {"idempotency_key": new.idempotency_key, "create_fingerprint": new.fingerprint}
    await conn.execute(sessions.insert().values(**values))
    await conn.execute(
        participants.insert().values(
            session_id=session.id,
            user_id=session.creator_id,
            role="owner",
            joined_at=session.created_at,
        )
    )
    if new.conversation:
        await conn.execute(
            conversation_messages.insert(),
            [
                {
                    "session_id": session.id,
                    "position": i,
                    "message": row,
                    "created_at": session.created_at,
                    "prompt_id": None,
                }
                for i, row in enumerate(new.conversation)
            ],
        )
    if new.branch_head is not None:
        await conn.execute(
            session_branches.insert().values(
                session_id=session.id,
                branch=session.branch,
                head_sha=new.branch_head,
                created_at=session.created_at,
                updated_at=session.created_at,
            )
        )
    return True


async def _insert_prompt(conn: AsyncConnection, new: NewPrompt) -> None:
    prompt = new.prompt
    await conn.execute(
        prompts.insert().values(
            **prompt.model_dump(exclude={"author"}),
            author_id=prompt.author.id,
            fingerprint=new.fingerprint,
        )
    )
    await insert_once(
        conn,
        participants,
        {
            "session_id": prompt.session_id,
            "user_id": prompt.author.id,
            "role": "member",
            "joined_at": prompt.created_at,
        },
    )


async def _move_prompt(conn: AsyncConnection, move: PromptMove) -> bool:
    now = utcnow()
    values: dict[str, Any] = {"status": move.status}
    if move.status == "running":
        values["started_at"] = now
    elif move.status not in UNFINISHED:
        values.update(finished_at=now, error_code=move.error_code, error_message=move.error_message)
    query = prompts.update().where(prompts.c.id == move.prompt_id).values(**values)
    if move.only_if:
        query = query.where(prompts.c.status.in_(move.only_if))
    return (await conn.execute(query)).rowcount > 0


async def _move_sandbox(conn: AsyncConnection, move: SandboxMove) -> None:
    if move.new is not None:
        await conn.execute(
            sandboxes.insert().values(
                id=move.sandbox_id,
                session_id=move.new.session_id,
                provider=move.new.provider,
                status=move.status,
                token_hash=move.new.token_hash,
                created_at=utcnow(),
            )
        )
    values: dict[str, Any] = {"status": move.status}
    if move.status == "ready":
        values["ready_at"] = utcnow()
    elif move.status in ("stopped", "lost", "failed"):
        values["stopped_at"] = utcnow()
    await conn.execute(sandboxes.update().where(sandboxes.c.id == move.sandbox_id).values(**values))


PLAIN_CHUNK = 500
"""Sessions per bulk update (five bound values each, well inside every database's limit)."""


@functools.cache
def _plain_sql(dialect: str, count: int) -> str:
    """``UPDATE sessions`` moving ``count`` rows on, each by its own number of events, in the
    driver's own dialect: built once per size, it skips the expression layer, whose
    per-session constructs cost more than the statement."""
    if dialect == "postgresql":
        mark = iter(f"${n}" for n in range(1, 5 * count + 1)).__next__
        as_int, as_ts = "CAST({} AS INTEGER)", "CAST({} AS TIMESTAMPTZ)"
    else:
        mark = iter(["?"] * (5 * count)).__next__
        as_int, as_ts = "{}", "{}"
    seqs = " ".join(f"WHEN {mark()} THEN {as_int.format(mark())}" for _ in range(count))
    stamps = " ".join(f"WHEN {mark()} THEN {as_ts.format(mark())}" for _ in range(count))
    ids = ", ".join(mark() for _ in range(count))
    # Only placeholders go into the text; every value is bound.
    return (
        f"UPDATE sessions SET last_seq = last_seq + CASE id {seqs} END, "  # noqa: S608
        f"updated_at = CASE id {stamps} END WHERE id IN ({ids}) RETURNING id, last_seq"
    )


async def _advance_plain(conn: AsyncConnection, plain: dict[str, list[_Item]]) -> set[str]:
    """Give the events of sessions that change nothing but their log their seqs: one update
    of all their rows (a chunk at a time), each row moved on by its own count. Returns the
    sessions found; the others do not exist, and nothing was written for them."""
    found: set[str] = set()
    ids = list(plain)
    stamp = _ts_processor(conn.dialect)
    for start in range(0, len(ids), PLAIN_CHUNK):
        chunk = ids[start : start + PLAIN_CHUNK]
        params: list[Any] = []
        for sid in chunk:
            params += (sid, len(plain[sid]))
        for sid in chunk:
            params += (sid, stamp(plain[sid][-1].change.event.ts))
        params += chunk
        rows = await conn.exec_driver_sql(_plain_sql(conn.dialect.name, len(chunk)), tuple(params))
        for row in rows.all():
            session_id, last_seq = str(row._mapping["id"]), int(row._mapping["last_seq"])
            items = plain[session_id]
            for k, item in enumerate(items):
                item.seq = last_seq - len(items) + 1 + k
            found.add(session_id)
    return found


def _ts_processor(dialect: sa.Dialect) -> Callable[[datetime], Any]:
    """How the driver takes a timestamp for ``sessions.updated_at`` (as the column binds it)."""
    process = sessions.c.updated_at.type.bind_processor(dialect)
    return process if process is not None else (lambda value: value)


async def _advance_session(conn: AsyncConnection, session_id: str, items: list[_Item]) -> bool:
    """Give ``items`` (one session's, in order) their seqs from the session row, with the
    columns and cost they change: one update for a run of plain events, one more for each
    change that sets columns or adds cost (so each usage event gets its exact running total).
    False when the session does not exist (then nothing was written: it is the first update)."""
    run: list[_Item] = []
    for n, item in enumerate(items):
        run.append(item)
        if item.change.session or item.cost is not None or n == len(items) - 1:
            values: dict[str, Any] = dict(item.change.session)
            if item.cost is not None:
                values["total_cost_usd"] = sessions.c.total_cost_usd + item.cost
            row = (
                await conn.execute(
                    sessions.update()
                    .where(sessions.c.id == session_id)
                    .values(
                        **values,
                        last_seq=sessions.c.last_seq + len(run),
                        updated_at=item.change.event.ts,
                    )
                    .returning(sessions.c.last_seq, sessions.c.total_cost_usd)
                )
            ).first()
            if row is None:
                return False
            for k, done in enumerate(run):
                done.seq = int(row.last_seq) - len(run) + 1 + k
            if item.cost is not None:
                item.total = float(row.total_cost_usd)
            run = []
    return True
