"""The Alembic migrations build the schema the code expects, on SQLite and on Postgres."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from openinspect.domain.events import SessionCreated, load_event
from openinspect.domain.models import Author
from openinspect.errors import StoreConflict
from openinspect.store import Store
from openinspect.store.tables import metadata
from tests.conftest import skip_or_fail
from tests.store.records import session_record

PG_ADMIN_URL = os.environ.get(
    "OPENINSPECT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A throwaway database on the local Postgres."""
    async with throwaway_pg_database() as url:
        yield url


@asynccontextmanager
async def throwaway_pg_database() -> AsyncIterator[str]:
    """Create a database on the local Postgres (skip, or fail under CI, when it is not
    reachable), give its URL, and drop it afterwards."""
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"openinspect_test_{secrets.token_hex(4)}"
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        await admin.dispose()
        skip_or_fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _exercise(url: str) -> None:
    store = await Store.open(url)
    try:
        # Twice: migrating an up-to-date schema is a no-op.
        from openinspect.store.db import migrate

        await migrate(store.engine)
        async with store.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert set(metadata.tables) <= tables
        user = await store.users.create(name="Ada", email="ada@example.com", role="admin")
        token = await store.users.create_token(user.id, "t")
        assert (await store.users.authenticate(token)) == user
        assert await store.users.authenticate(token + "x") is None
        session = session_record("ses_0123456789abcdef", user.id)
        await store.sessions.create(session)
        event = SessionCreated(
            session_id=session.id,
            seq=1,
            title="t",
            repo_url="/r",
            base_branch="main",
            branch=session.branch,
            model="scripted:x",
            effort=None,
            creator=Author.of(user),
        )
        assert (await store.events.append(event)).event == event
        # The database assigns seqs: the same event appended again is the next one.
        again = (await store.events.append(event)).event
        assert again == event.model_copy(update={"seq": 2})
        assert await store.events.after(session.id, 0, 10) == [
            load_event(event.model_dump()),
            load_event(again.model_dump()),
        ]
        assert (await store.sessions.get(session.id)).last_seq == 2  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_migrations_on_sqlite(tmp_path: object) -> None:
    await _exercise(f"sqlite+aiosqlite:///{tmp_path}/oi.db")


@pytest.mark.postgres
async def test_migrations_on_postgres(pg_url: str) -> None:
    await _exercise(pg_url)


async def test_0004_adds_watched_at_to_existing_sessions(tmp_path: object) -> None:
    """Sessions made on schema 0003 survive 0004 unwatched, and the draft sweep's index exists."""
    from alembic import command

    from openinspect.store.db import _alembic_config, create_engine, migrate

    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0003"))
            await conn.execute(
                sa.text(
                    "INSERT INTO users (id, name, email, git_name, git_email, role, created_at) "
                    "VALUES ('usr_1', 'A', 'a@e', 'A', 'a@e', 'admin', '2025-01-01 00:00:00')"
                )
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO sessions (id, title, repo_url, base_branch, branch, model, "
                    "status, sandbox_status, creator_id, created_at, updated_at) VALUES "
                    "('ses_old', 't', '/r', 'main', 'openinspect/old', 'scripted:x', 'idle', "
                    "'none', 'usr_1', '2025-01-01 00:00:00', '2025-01-01 00:00:00')"
                )
            )
        await migrate(engine)
        async with engine.connect() as conn:
            watched = (
                await conn.execute(sa.text("SELECT watched_at FROM sessions WHERE id='ses_old'"))
            ).scalar_one()
            indexes = await conn.run_sync(
                lambda c: {i["name"] for i in sa.inspect(c).get_indexes("sessions")}
            )
        assert watched is None
        assert "ix_sessions_status_created_at" in indexes
    finally:
        await engine.dispose()


async def test_0005_adds_the_leases_table_and_takes_it_away(tmp_path: object) -> None:
    """A schema at 0004 gets an empty ``leases`` table keyed by name; downgrading drops it."""
    from alembic import command

    from openinspect.store.db import _alembic_config, create_engine, migrate

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/old.db")

    def tables(c: sa.Connection) -> set[str]:
        return set(sa.inspect(c).get_table_names())

    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0004"))
            assert "leases" not in await conn.run_sync(tables)
        await migrate(engine)
        async with engine.connect() as conn:
            assert "leases" in await conn.run_sync(tables)
            pk = await conn.run_sync(lambda c: sa.inspect(c).get_pk_constraint("leases"))
            assert pk["constrained_columns"] == ["name"]
            assert (await conn.execute(sa.text("SELECT count(*) FROM leases"))).scalar_one() == 0
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(_alembic_config(c), "0004"))
            assert "leases" not in await conn.run_sync(tables)
    finally:
        await engine.dispose()


async def test_0006_numbers_existing_events_by_time_keeping_each_sessions_order(
    tmp_path: object,
) -> None:
    """Events stored before the feed get positions by time across sessions; a session whose
    clock stepped back keeps its seq order; the head is the last position, and the next append
    takes the one after it."""
    from alembic import command

    from openinspect.store.db import _alembic_config, create_engine, migrate

    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    engine = create_engine(url)
    rows = [  # (session, seq, ts)
        ("ses_a", 1, "2025-01-01 10:00:00"),
        ("ses_b", 1, "2025-01-01 10:00:01"),
        ("ses_a", 2, "2025-01-01 10:00:02"),
        ("ses_a", 3, "2025-01-01 09:00:00"),  # the clock stepped back: still after seq 2
        ("ses_b", 2, "2025-01-01 10:00:03"),
    ]
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0004"))
            await conn.execute(
                sa.text(
                    "INSERT INTO users (id, name, email, git_name, git_email, role, created_at) "
                    "VALUES ('usr_1', 'A', 'a@e', 'A', 'a@e', 'admin', '2025-01-01 00:00:00')"
                )
            )
            for sid in ("ses_a", "ses_b"):
                await conn.execute(
                    sa.text(
                        "INSERT INTO sessions (id, title, repo_url, base_branch, branch, model, "
                        "status, sandbox_status, creator_id, created_at, updated_at) VALUES "
                        "(:id, 't', '/r', 'main', :branch, 'scripted:x', 'idle', 'none', "
                        "'usr_1', '2025-01-01 00:00:00', '2025-01-01 00:00:00')"
                    ),
                    {"id": sid, "branch": f"openinspect/{sid}"},
                )
            for sid, seq, ts in rows:
                event = SessionCreated(
                    session_id=sid, seq=seq, title="t", repo_url="/r", base_branch="main",
                    branch="b", model="scripted:x", effort=None,
                    creator=Author(id="usr_1", name="A", email="a@e"),
                )  # fmt: skip
                await conn.execute(
                    sa.text(
                        "INSERT INTO events (session_id, seq, type, prompt_id, ts, data) "
                        "VALUES (:s, :q, 'session-created', NULL, :ts, :data)"
                    ),
                    {"s": sid, "q": seq, "ts": ts, "data": event.model_dump_json()},
                )
        await migrate(engine)
        async with engine.connect() as conn:
            numbered = (
                await conn.execute(sa.text("SELECT session_id, seq FROM events ORDER BY pos"))
            ).all()
            head = (await conn.execute(sa.text("SELECT last_pos FROM feed_head"))).scalar_one()
        assert [tuple(r) for r in numbered] == [
            ("ses_a", 1), ("ses_b", 1), ("ses_a", 2), ("ses_a", 3), ("ses_b", 2),
        ]  # fmt: skip
        assert head == 5
    finally:
        await engine.dispose()
    store = await Store.open(url)
    try:
        assert [e.pos for e in await store.feed.read(0, 10)] == [1, 2, 3, 4, 5]
        event = SessionCreated(
            session_id="ses_b", seq=3, title="t", repo_url="/r", base_branch="main",
            branch="b", model="scripted:x", effort=None,
            creator=Author(id="usr_1", name="A", email="a@e"),
        )  # fmt: skip
        assert (await store.events.append(event)).pos == 6
    finally:
        await store.close()


async def test_0007_gives_existing_sessions_the_api_origin_and_keys_per_creator(
    tmp_path: object,
) -> None:
    """Sessions made before 0007 come from the door every client uses (``api``), and the
    idempotency key is unique per creator (and only per creator)."""
    from alembic import command

    from openinspect.store.db import _alembic_config, create_engine, migrate

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/old.db")
    insert = (
        "INSERT INTO sessions (id, title, repo_url, base_branch, branch, model, status, "
        "sandbox_status, creator_id, created_at, updated_at{extra}) VALUES ('{sid}', 't', '/r', "
        "'main', 'openinspect/{sid}', 'scripted:x', 'idle', 'none', '{uid}', "
        "'2025-01-01 00:00:00', '2025-01-01 00:00:00'{values})"
    )
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0004"))
            for uid in ("usr_1", "usr_2"):
                await conn.execute(
                    sa.text(
                        "INSERT INTO users (id, name, email, git_name, git_email, role, "
                        f"created_at) VALUES ('{uid}', 'A', 'a@e', 'A', 'a@e', 'admin', "
                        "'2025-01-01 00:00:00')"
                    )
                )
            await conn.execute(
                sa.text(insert.format(sid="ses_old", uid="usr_1", extra="", values=""))
            )
        await migrate(engine)
        from openinspect.store.sessions import SessionStore

        old = await SessionStore(engine).get("ses_old")
        assert old is not None and (old.origin, old.origin_ref) == ("api", None)
        keyed = ", idempotency_key"
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(insert.format(sid="ses_a", uid="usr_1", extra=keyed, values=", 'k'"))
            )
            await conn.execute(  # another creator may use the same key
                sa.text(insert.format(sid="ses_b", uid="usr_2", extra=keyed, values=", 'k'"))
            )
        with pytest.raises(StoreConflict):
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text(insert.format(sid="ses_c", uid="usr_1", extra=keyed, values=", 'k'"))
                )
    finally:
        await engine.dispose()


async def test_0008_splits_each_stored_conversation_into_its_messages(tmp_path: object) -> None:
    """A conversation stored whole (before 0008) loads after the migration as the same
    messages, in order, and the next step appends to it; the downgrade joins it back."""
    from alembic import command
    from pydantic_ai.messages import (
        ModelMessagesTypeAdapter,
        ModelRequest,
        ModelResponse,
        TextPart,
        UserPromptPart,
    )

    from openinspect.agent.conversation import Conversation
    from openinspect.store.db import _alembic_config, create_engine, migrate
    from openinspect.store.sessions import SessionStore

    history = [
        m
        for i in range(6)
        for m in (
            ModelRequest(parts=[UserPromptPart(content=f"question {i} — ü")]),
            ModelResponse(parts=[TextPart(content=f"answer {i}")]),
        )
    ]
    whole = ModelMessagesTypeAdapter.dump_json(history).decode()
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/old.db")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0007"))
            await conn.execute(
                sa.text(
                    "INSERT INTO users (id, name, email, git_name, git_email, role, created_at) "
                    "VALUES ('usr_1', 'A', 'a@e', 'A', 'a@e', 'admin', '2025-01-01 00:00:00')"
                )
            )
            for sid in ("ses_old", "ses_none"):
                await conn.execute(
                    sa.text(
                        "INSERT INTO sessions (id, title, repo_url, base_branch, branch, model, "
                        "status, sandbox_status, creator_id, created_at, updated_at) VALUES "
                        f"('{sid}', 't', '/r', 'main', 'openinspect/{sid}', 'scripted:x', "
                        "'idle', 'none', 'usr_1', '2025-01-01 00:00:00', '2025-01-01 00:00:00')"
                    )
                )
            await conn.execute(
                sa.text(
                    "INSERT INTO conversations (session_id, messages, updated_at) "
                    "VALUES ('ses_old', :m, '2025-01-02 00:00:00')"
                ),
                {"m": whole},
            )
        await migrate(engine)
        store = SessionStore(engine)
        rows = await store.load_conversation("ses_old")
        assert len(rows) == 12
        conversation = Conversation(rows)
        assert conversation.history() == history
        assert await store.load_conversation("ses_none") == []
        more = [*history, ModelRequest(parts=[UserPromptPart(content="one more")])]
        assert (
            await conversation.save(more, lambda s, r: store.save_conversation("ses_old", s, r))
            == 1
        )
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(_alembic_config(c), "0007"))
            back = (await conn.execute(sa.text("SELECT messages FROM conversations"))).all()
        assert [ModelMessagesTypeAdapter.validate_json(r.messages) for r in back] == [more]
    finally:
        await engine.dispose()


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from openinspect.store.db import MIGRATIONS, head_revision

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


def test_opening_a_store_at_the_newest_schema_does_not_load_alembic(tmp_path: Path) -> None:
    """Every server start and every control plane opened in a test pays for Alembic only when
    there is a migration to run."""
    url = f"sqlite+aiosqlite:///{tmp_path}/oi.db"
    program = (
        "import asyncio, sys\n"
        "from openinspect.store import Store\n"
        "async def main():\n"
        f"    store = await Store.open({url!r})\n"
        "    await store.close()\n"
        "    print('alembic' in sys.modules)\n"
        "asyncio.run(main())\n"
    )
    run = [sys.executable, "-c", program]
    first = subprocess.run(run, capture_output=True, text=True, check=True, timeout=120)
    again = subprocess.run(run, capture_output=True, text=True, check=True, timeout=120)
    assert first.stdout.strip() == "True"  # a new database is migrated
    assert again.stdout.strip() == "False"
