"""The database handle: engine from a URL, SQLite tuning, error mapping, and migrations.

SQLite (the default) gets WAL, foreign keys and a busy timeout on every connection; Postgres is
used as it is. Both run the same Alembic migrations.

**Errors.** Every engine made here maps the errors of its driver into the exception tree, at
the engine's ``handle_error`` hook (statement and connect-time driver errors), its
``do_connect`` hook (a refused or timed-out connection, which the drivers raise as ``OSError``)
and its pool (no free connection in time, which the pool raises itself):

- unreachable, disconnected, locked (SQLite past its busy timeout), out of resources, shutting
  down, a statement or lock timeout, the pool exhausted →
  :class:`~openinspect.errors.StoreUnavailable` (503, retry);
- a unique or foreign key violated, a serialization failure or deadlock →
  :class:`~openinspect.errors.StoreConflict` (409);
- anything else (a bug, a schema out of date) → :class:`~openinspect.errors.StoreError` (500).

Messages name the kind of failure only, never SQL, parameters or paths; the driver's error is the
``__cause__``, so the server log keeps it. Store code that expects a conflict (an idempotent
insert) catches ``StoreConflict``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, PoolProxiedConnection

from openinspect.errors import ConfigError, StoreConflict, StoreError, StoreUnavailable

if TYPE_CHECKING:  # Alembic (and Mako) load only when a migration has to run
    from alembic.config import Config

SQLITE_BUSY_TIMEOUT_MS = 10_000
POOL_TIMEOUT_S = 30.0
MIGRATIONS = "openinspect.store:migrations"


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


_UNAVAILABLE_SQLSTATES = ("08", "53", "57", "55P03", "58")
"""Connection exceptions, insufficient resources, operator intervention (shutdown, statement
timeout), lock not available, system errors: the database, not the statement."""
_CONFLICT_SQLSTATES = ("23", "40")
"""Integrity constraint violations; transaction rollbacks (serialization failure, deadlock)."""
_RETRY_HINT = "Try again in a moment; the server log has the cause"


_UNAVAILABLE_SQLITE = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_CANTOPEN",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_NOMEM",
    "SQLITE_PROTOCOL",
    "SQLITE_READONLY",
)
"""SQLite result codes about the file or its lock, not the statement (``SQLITE_ERROR``, say
"no such table", is the statement's)."""


def map_error(exc: BaseException, *, is_disconnect: bool = False) -> StoreError:
    """The error of the tree for a SQLAlchemy or driver error (see the module docstring)."""
    orig = getattr(exc, "orig", None)
    sqlstate = str(getattr(orig, "sqlstate", None) or "")
    sqlite_code = str(getattr(orig, "sqlite_errorname", None) or "")
    if (
        is_disconnect
        or isinstance(exc, OSError | sa.exc.InterfaceError | sa.exc.TimeoutError)
        or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
        or sqlite_code.startswith(_UNAVAILABLE_SQLITE)
    ):
        return StoreUnavailable("The database cannot be reached or is busy", hint=_RETRY_HINT)
    if isinstance(exc, sa.exc.IntegrityError) or sqlstate.startswith(_CONFLICT_SQLSTATES):
        return StoreConflict(
            "The write conflicts with what is stored or with a concurrent write",
            hint="Reload and try again",
        )
    return StoreError("The database refused a statement", hint="The server log has the details")


def _on_error(context: sa.engine.ExceptionContext) -> None:
    if context.sqlalchemy_exception is None:  # not a driver error: leave it be
        return
    if context.is_pre_ping:  # a dead pooled connection: the pool replaces it by itself
        return
    raise map_error(
        context.sqlalchemy_exception, is_disconnect=context.is_disconnect
    ) from context.sqlalchemy_exception


def _on_connect(dialect: sa.Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
    try:
        return dialect.connect(*cargs, **cparams)
    except OSError as exc:  # refused, unreachable, timed out: not wrapped by the driver
        raise map_error(exc) from exc


class _StorePool(AsyncAdaptedQueuePool):
    """The default pool, with its checkout timeout (every connection busy for
    ``pool_timeout_s``) mapped like every other store error: the pool raises it itself, so
    neither engine hook sees it."""

    def connect(self) -> PoolProxiedConnection:
        try:
            return super().connect()
        except sa.exc.TimeoutError as exc:
            raise map_error(exc) from exc


def _map_errors(engine: AsyncEngine) -> AsyncEngine:
    sa.event.listen(engine.sync_engine, "handle_error", _on_error)
    sa.event.listen(engine.sync_engine, "do_connect", _on_connect)
    return engine


def create_engine(
    url: str,
    *,
    sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    pool_timeout_s: float = POOL_TIMEOUT_S,
) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite:///…`` or ``postgresql+asyncpg://…``).
    A SQLite write waits up to ``sqlite_busy_timeout_ms`` for another writer's lock; a
    statement waits up to ``pool_timeout_s`` for a free connection of the pool."""
    try:
        parsed = make_url(url)
    except SQLAlchemyError as exc:
        raise ConfigError(
            f"Invalid database URL {url!r}: {exc}",
            hint="Expected sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db",
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        pooled = {} if parsed.database in (None, "", ":memory:") else _pool(pool_timeout_s)
        engine = create_async_engine(
            parsed, connect_args={"timeout": sqlite_busy_timeout_ms / 1000}, **pooled
        )
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas(sqlite_busy_timeout_ms))
        return _map_errors(engine)
    try:
        engine = create_async_engine(parsed, pool_pre_ping=True, **_pool(pool_timeout_s))
        return _map_errors(engine)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"The driver for {parsed.drivername!r} is not installed ({exc.name})",
            hint="pip install 'openinspect[postgres]'",
        ) from exc


def _pool(timeout_s: float) -> dict[str, Any]:
    return {"poolclass": _StorePool, "pool_timeout": timeout_s}


def _alembic_config(connection: sa.Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["connection"] = connection
    return config


_REVISION = re.compile(r'^(down_revision|revision)\s*=\s*(?:"([^"]*)"|None)', re.MULTILINE)


@functools.cache
def head_revision() -> str:
    """The newest migration's revision, read from the migration files' ``revision`` and
    ``down_revision`` lines (the one no other migration revises) without loading Alembic."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (Path(__file__).parent / "migrations" / "versions").glob("*.py"):
        found = {m[1]: m[2] for m in _REVISION.finditer(path.read_text())}
        if found.get("revision"):
            revisions.add(found["revision"])
        if found.get("down_revision"):
            revised.add(found["down_revision"])
    heads = revisions - revised
    if len(heads) != 1:
        raise StoreError(f"the migrations have {len(heads)} heads; expected one")
    return heads.pop()


def _current_revision(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration. Safe to run on every start: a schema already
    at the newest one is only looked at (Alembic is not even loaded)."""

    def upgrade(connection: sa.Connection) -> None:
        from alembic import command

        command.upgrade(_alembic_config(connection), "head")

    async with engine.connect() as conn:
        if await conn.run_sync(_current_revision) == head_revision():
            return
    async with engine.begin() as conn:
        await conn.run_sync(upgrade)


async def insert_once(conn: AsyncConnection, table: sa.Table, values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same primary or unique key exists (``ON CONFLICT DO
    NOTHING``, so the caller's transaction carries on either way); True when it was written."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    result = await conn.execute(insert(table).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)
