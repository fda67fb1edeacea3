"""A store on each supported database: ``store_url`` runs a test on SQLite and on the local
Postgres (a throwaway database; skipped there when Postgres is not running, outside CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.test_migrations import pg_url

__all__ = ["pg_url", "store_url"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite+aiosqlite:///{tmp_path}/oi.db"
