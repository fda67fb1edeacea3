"""The database handle: engine from a URL, SQLite tuning, and migrations.

SQLite (the default) gets WAL, foreign keys and a busy timeout on every connection; Postgres is
used as it is. Both run the same Alembic migrations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from openinspect.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 10_000
MIGRATIONS = "openinspect.store:migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite:///…`` or ``postgresql+asyncpg://…``)."""
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
        engine = create_async_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_async_engine(parsed, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"The driver for {parsed.drivername!r} is not installed ({exc.name})",
            hint="pip install 'openinspect[postgres]'",
        ) from exc


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration. Safe to run on every start."""

    def upgrade(connection: sa.Connection) -> None:
        command.upgrade(_alembic_config(connection), "head")

    async with engine.begin() as conn:
        await conn.run_sync(upgrade)
