"""The branch-claims migration keeps what existing sessions had: their own branches and the
branches they pushed are theirs, a name two sessions pushed is the first one's. SQLite and
Postgres."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from openinspect.domain.events import utcnow
from openinspect.store import Store
from openinspect.store.db import _alembic_config, create_engine, migrate
from openinspect.store.tables import events, session_branches, sessions
from tests.store.records import session_record
from tests.store.test_migrations import pg_url  # noqa: F401 - the fixture

REPO = "/srv/repos/widgets"


async def _upgrade_from_0002(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0002"))
    older = await Store.open(url, run_migrations=False)  # these stores work on schema 0002
    try:
        user = await older.users.create(name="Ada", email="ada@example.com", role="admin")
        first = session_record("ses_1111111111111111", user.id, REPO)
        second = session_record("ses_2222222222222222", user.id, REPO)
        old = session_record("ses_3333333333333333", user.id, REPO)
        t0 = utcnow()
        async with older.engine.begin() as conn:
            for session in (first, second, old):  # the columns of schema 0002
                row = session.model_dump(
                    exclude={"origin", "origin_ref", "forked_from_id", "forked_from_seq"}
                )
                await conn.execute(sessions.insert().values(**row))
            for sid, offset in ((first.id, 1), (second.id, 2)):
                await conn.execute(
                    session_branches.insert().values(
                        session_id=sid,
                        branch="openinspect/shared",
                        head_sha="a" * 40,
                        created_at=t0 + timedelta(seconds=offset),
                        updated_at=t0 + timedelta(seconds=offset),
                    )
                )
            # A session from before session_branches: only its git-push event says it pushed.
            push = {"type": "git-push", "sha": "b" * 40, "branch": "openinspect/old-work"}
            await conn.execute(
                events.insert().values(
                    session_id=old.id,
                    seq=1,
                    type="git-push",
                    prompt_id=None,
                    ts=t0,
                    data=json.dumps({"session_id": old.id, "seq": 1, **push}),
                )
            )
    finally:
        await older.close()
    await migrate(engine)
    await engine.dispose()

    store = await Store.open(url)
    try:
        branches = store.branches
        assert await branches.owner(REPO, first.branch) == first.id
        assert await branches.owner(REPO, second.branch) == second.id
        assert await branches.owner(REPO, "openinspect/shared") == first.id
        assert await branches.owner(REPO, "openinspect/old-work") == old.id
        assert await branches.names(old.id) == {"openinspect/old-work"}
        assert await branches.head(old.id, "openinspect/old-work") == "b" * 40
        assert await branches.claimed(second.id) == {second.branch}
        assert not await branches.claim(second.id, REPO, "openinspect/shared")
    finally:
        await store.close()


async def test_the_backfill_on_sqlite(tmp_path: object) -> None:
    await _upgrade_from_0002(f"sqlite+aiosqlite:///{tmp_path}/oi.db")


@pytest.mark.postgres
async def test_the_backfill_on_postgres(pg_url: str) -> None:  # noqa: F811
    await _upgrade_from_0002(pg_url)


def test_the_claims_table_has_one_claim_per_repo_and_name() -> None:
    from openinspect.store.tables import branch_claims

    assert [c.name for c in branch_claims.primary_key.columns] == ["repo_key", "branch"]
    assert not branch_claims.foreign_keys  # a claim outlives its session
    assert isinstance(branch_claims.c.session_id.type, sa.String)
