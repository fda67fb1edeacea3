"""The unit of work on SQLite and the real Postgres: a state change and the event announcing it
commit together or not at all. Failures are injected in the database itself (a trigger that
raises, or on Postgres one that kills its own connection mid-transaction), between the state
change and its event and the other way round; a guard or fence that fails refuses its change
alone, and one bad change in a batch leaves the others committed, gap-free."""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from openinspect.domain.events import (
    AgentText,
    PromptFinished,
    PromptQueued,
    PromptStarted,
    SessionCreated,
    SessionUpdated,
    Usage,
)
from openinspect.domain.models import Author, Prompt, User
from openinspect.errors import LeaseLost, NotFoundError, StoreError
from openinspect.store import Store
from openinspect.store.changes import (
    Appended,
    Change,
    NewPrompt,
    NewSession,
    PromptMove,
    Refused,
)
from tests.store.databases import pg_url, store_url  # noqa: F401 - fixtures
from tests.store.records import prompt_record, session_record
from tests.store.test_migrations import throwaway_pg_database


async def inject_failure(store: Store, table: str, when: str, *, kill: bool = False) -> None:
    """Make the database fail a write to ``table`` whose new row matches ``when`` (SQL over
    ``NEW``): the statement raises, or with ``kill`` (Postgres) the connection is terminated
    in the middle of the transaction."""
    async with store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            assert not kill
            op = "INSERT" if table == "events" else "UPDATE"
            await conn.execute(
                sa.text(
                    f"CREATE TRIGGER inject_{table} BEFORE {op} ON {table} WHEN {when} "
                    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                )
            )
            return
        action = (
            "PERFORM pg_terminate_backend(pg_backend_pid());"
            if kill
            else "RAISE EXCEPTION 'injected failure';"
        )
        await conn.execute(
            sa.text(
                f"CREATE FUNCTION inject_{table}() RETURNS trigger AS $$ BEGIN "
                f"IF {when} THEN {action} END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        await conn.execute(
            sa.text(
                f"CREATE TRIGGER inject_{table} BEFORE INSERT OR UPDATE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION inject_{table}()"
            )
        )


async def new_session(store: Store, user: User) -> str:
    session = session_record(f"ses_{secrets.token_hex(8)}", user.id)
    assert await store.sessions.create(session)
    return session.id


async def running_prompt(store: Store, session_id: str, author: Author) -> Prompt:
    prompt = prompt_record(session_id, author)
    queued = Change(
        PromptQueued(
            session_id=session_id,
            prompt_id=prompt.id,
            author=author,
            content=prompt.content,
            model="scripted:x",
            effort=None,
            position=0,
        ),
        prompt=NewPrompt(prompt, "f"),
    )
    started = Change(
        PromptStarted(session_id=session_id, prompt_id=prompt.id, model="scripted:x", effort=None),
        prompt=PromptMove(prompt.id, "running", only_if=("queued",)),
    )
    outcomes = await store.events.commit([queued, started])
    assert all(isinstance(o, Appended) for o in outcomes)
    return prompt


def finished(session_id: str, prompt_id: str) -> Change:
    return Change(
        PromptFinished(session_id=session_id, prompt_id=prompt_id, status="success"),
        prompt=PromptMove(prompt_id, "success", only_if=("running",)),
    )


async def seqs(store: Store, session_id: str) -> list[int]:
    return [e.seq for e in await store.events.after(session_id, 0, 1000)]


async def test_a_prompt_queued_started_and_finished_with_its_events(store: Store) -> None:
    user = await store.users.create(name="Ada", email="ada@e", role="admin")
    session_id = await new_session(store, user)
    prompt = await running_prompt(store, session_id, Author.of(user))
    (outcome,) = await store.events.commit([finished(session_id, prompt.id)])
    assert isinstance(outcome, Appended) and outcome.event.seq == 3
    stored = await store.prompts.get(prompt.id)
    assert stored is not None and stored.status == "success" and stored.finished_at is not None
    assert await store.sessions.participant_roles(session_id) == {user.id: "owner"}
    assert [e.type for e in await store.events.after(session_id, 0, 10)] == [
        "prompt-queued",
        "prompt-started",
        "prompt-finished",
    ]
    # The guard: a prompt no longer running cannot finish again, and no event says it did.
    (again,) = await store.events.commit([finished(session_id, prompt.id)])
    assert isinstance(again, Refused)
    assert await seqs(store, session_id) == [1, 2, 3]
    assert (await store.sessions.get(session_id)).last_seq == 3  # type: ignore[union-attr]


async def test_a_failed_event_insert_leaves_the_state_change_unwritten(store: Store) -> None:
    user = await store.users.create(name="Ada", email="ada@e", role="admin")
    session_id = await new_session(store, user)
    prompt = await running_prompt(store, session_id, Author.of(user))
    await inject_failure(store, "events", "NEW.type = 'prompt-finished'")
    (outcome,) = await store.events.commit([finished(session_id, prompt.id)])
    assert isinstance(outcome, StoreError) and "injected failure" in str(outcome.__cause__)
    stored = await store.prompts.get(prompt.id)
    assert stored is not None and stored.status == "running" and stored.finished_at is None
    assert await seqs(store, session_id) == [1, 2]
    assert (await store.sessions.get(session_id)).last_seq == 2  # type: ignore[union-attr]


async def test_a_failed_state_change_leaves_no_event(store: Store) -> None:
    user = await store.users.create(name="Ada", email="ada@e", role="admin")
    session_id = await new_session(store, user)
    prompt = await running_prompt(store, session_id, Author.of(user))
    await inject_failure(store, "prompts", "NEW.status = 'success'")
    (outcome,) = await store.events.commit([finished(session_id, prompt.id)])
    assert isinstance(outcome, StoreError)
    assert await seqs(store, session_id) == [1, 2]
    stored = await store.prompts.get(prompt.id)
    assert stored is not None and stored.status == "running"
    # A session row change that fails takes its event with it, too.
    await inject_failure(store, "sessions", "NEW.title = 'refused'")
    (outcome,) = await store.events.commit(
        [Change(AgentText(session_id=session_id, part_id="p", text="x"), {"title": "refused"})]
    )
    assert isinstance(outcome, StoreError)
    assert await seqs(store, session_id) == [1, 2]


@pytest.mark.postgres
async def test_a_transaction_killed_between_state_and_event_leaves_neither(
    tmp_path: Path,
) -> None:
    async with throwaway_pg_database() as url:
        store = await Store.open(url)
        try:
            user = await store.users.create(name="Ada", email="ada@e", role="admin")
            session_id = await new_session(store, user)
            prompt = await running_prompt(store, session_id, Author.of(user))
            await inject_failure(store, "events", "NEW.type = 'prompt-finished'", kill=True)
            (outcome,) = await store.events.commit([finished(session_id, prompt.id)])
            assert isinstance(outcome, Exception)  # the connection died mid-transaction
            stored = await store.prompts.get(prompt.id)
            assert stored is not None and stored.status == "running"
            assert await seqs(store, session_id) == [1, 2]
            # The store carries on with a fresh connection.
            text = AgentText(session_id=session_id, part_id="p", text="after")
            assert (await store.events.append(text)).event.seq == 3
        finally:
            await store.close()


async def test_one_bad_change_in_a_batch_fails_alone(store: Store) -> None:
    user = await store.users.create(name="Ada", email="ada@e", role="admin")
    good, bad = await new_session(store, user), await new_session(store, user)
    prompt = await running_prompt(store, bad, Author.of(user))
    await inject_failure(store, "events", "NEW.type = 'prompt-finished'")
    lease = await store.leases.acquire(f"session:{good}", "replica-a", 10.0)
    assert lease is not None
    stale = await store.leases.acquire("session:elsewhere", "replica-a", 10.0)
    assert stale is not None and await store.leases.release(stale)

    def text(session_id: str, n: int) -> Change:
        return Change(AgentText(session_id=session_id, part_id="p", text=str(n)), fence=lease)

    batch = [
        text(good, 1),
        finished(bad, prompt.id),  # raises in the database: the batch is retried one by one
        Change(AgentText(session_id=bad, part_id="p", text="x"), fence=stale),  # lease lost
        Change(AgentText(session_id="ses_missing", part_id="p", text="x")),
        finished(bad, "prm_missing"),  # refused by its guard
        text(good, 2),
        text(bad, 3),
    ]
    outcomes = await store.events.commit(batch)
    assert isinstance(outcomes[0], Appended) and outcomes[0].event.seq == 1
    assert isinstance(outcomes[1], StoreError)
    assert isinstance(outcomes[2], LeaseLost)
    assert isinstance(outcomes[3], NotFoundError)
    assert isinstance(outcomes[4], Refused)
    assert isinstance(outcomes[5], Appended) and outcomes[5].event.seq == 2
    assert isinstance(outcomes[6], Appended) and outcomes[6].event.seq == 3
    assert await seqs(store, good) == [1, 2]
    assert await seqs(store, bad) == [1, 2, 3]
    positions = [o.pos for o in outcomes if isinstance(o, Appended)]
    assert positions == sorted(positions) and len(set(positions)) == 3
    assert await store.feed.head() == max(positions)


async def test_the_changes_of_one_unit_stand_or_fall_together_when_a_batch_is_retried(
    store: Store,
) -> None:
    """A prompt's end and a session update of the same ``unit``: the end fails in the
    database, so the batch is retried; the update is retried with it and fails with it, while
    a change of no unit still commits alone."""
    user = await store.users.create(name="Ada", email="ada@e", role="admin")
    session_id = await new_session(store, user)
    prompt = await running_prompt(store, session_id, Author.of(user))
    await inject_failure(store, "events", "NEW.type = 'prompt-finished'")
    title = SessionUpdated(session_id=session_id, title="renamed")
    batch = [
        Change(title, session={"title": "renamed"}, unit=prompt.id),
        replace(finished(session_id, prompt.id), unit=prompt.id),
        Change(AgentText(session_id=session_id, part_id="p", text="alone")),
    ]
    outcomes = await store.events.commit(batch)
    assert isinstance(outcomes[0], StoreError) and isinstance(outcomes[1], StoreError)
    assert isinstance(outcomes[2], Appended)
    session = await store.sessions.get(session_id)
    assert session is not None and session.title != "renamed"
    assert (await store.prompts.get(prompt.id)).status == "running"  # type: ignore[union-attr]
    stored = await store.events.after(session_id, 0, 100)
    assert [e.type for e in stored][-1] == "agent-text"
    assert not any(getattr(e, "title", None) == "renamed" for e in stored)


async def test_a_clean_batch_is_one_transaction_with_contiguous_seqs(store: Store) -> None:
    user = await store.users.create(name="Ada", email="ada@e", role="admin")
    a, b = await new_session(store, user), await new_session(store, user)
    commits: list[object] = []
    sa.event.listen(store.engine.sync_engine, "commit", commits.append)
    changes = [
        Change(AgentText(session_id=sid, part_id="p", text=str(n)))
        for n in range(20)
        for sid in (a, b)
    ]
    changes.insert(7, Change(AgentText(session_id=a, part_id="p", text="t"), {"title": "New"}))
    outcomes = await store.events.commit(changes)
    assert len(commits) == 1
    assert await seqs(store, a) == list(range(1, 22))
    assert await seqs(store, b) == list(range(1, 21))
    session = await store.sessions.get(a)
    assert session is not None and session.title == "New" and session.last_seq == 21
    texts = [o.event.text for o in outcomes if isinstance(o, Appended) and o.event.session_id == a]  # type: ignore[union-attr]
    stored = [e.text for e in await store.events.after(a, 0, 100)]  # type: ignore[union-attr]
    assert texts == stored  # each session's events in the order they were given


def usage(session_id: str, prompt_id: str, step: int, cost: float) -> Change:
    return Change(
        Usage(
            session_id=session_id,
            prompt_id=prompt_id,
            model="scripted:x",
            input_tokens=10,
            output_tokens=5,
            cost_usd=cost,
            total_cost_usd=999.0,  # the store's total replaces whatever the writer says
            step=step,
        )
    )


async def test_cost_is_counted_once_per_model_response(store: Store) -> None:
    user = await store.users.create(name="Ada", email="ada@e", role="admin")
    session_id = await new_session(store, user)
    prompt = await running_prompt(store, session_id, Author.of(user))
    first = await store.events.commit(
        [usage(session_id, prompt.id, 0, 0.25), usage(session_id, prompt.id, 0, 0.25)]
    )
    second = await store.events.commit(
        [usage(session_id, prompt.id, 1, 0.5), usage(session_id, prompt.id, 0, 0.25)]
    )
    totals = [o.event.total_cost_usd for o in [*first, *second] if isinstance(o, Appended)]  # type: ignore[union-attr]
    assert totals == [0.25, 0.25, 0.75, 0.25]
    fresh = [o.fresh for o in [*first, *second] if isinstance(o, Appended)]
    assert fresh == [True, False, True, False]  # a re-sent response is not published again
    session = await store.sessions.get(session_id)
    assert session is not None and session.total_cost_usd == 0.75
    assert [e.type for e in await store.events.after(session_id, 2, 10)] == ["usage", "usage"]


async def test_a_session_is_created_with_its_event(store: Store) -> None:
    user = await store.users.create(name="Ada", email="ada@e", role="admin")
    session = session_record(f"ses_{secrets.token_hex(8)}", user.id)
    created = SessionCreated(
        session_id=session.id,
        title=session.title,
        repo_url=session.repo_url,
        base_branch=session.base_branch,
        branch=session.branch,
        model=session.model,
        effort=None,
        creator=Author.of(user),
    )
    change = Change(created, new_session=NewSession(session, "key-1", "print"))
    (outcome,) = await store.events.commit([change])
    assert isinstance(outcome, Appended) and outcome.event.seq == 1
    assert await store.sessions.participant_roles(session.id) == {user.id: "owner"}
    # Under a key already used: refused, and nothing of the second session exists.
    other = session_record(f"ses_{secrets.token_hex(8)}", user.id)
    again = Change(
        created.model_copy(update={"session_id": other.id}),
        new_session=NewSession(other, "key-1", "print"),
    )
    (refused,) = await store.events.commit([again])
    assert isinstance(refused, Refused)
    assert await store.sessions.get(other.id) is None
    assert await store.events.after(other.id, 0, 10) == []
    # A created session whose event cannot be stored is not created either.
    await inject_failure(store, "events", "NEW.type = 'session-created'")
    third = session_record(f"ses_{secrets.token_hex(8)}", user.id)
    (failed,) = await store.events.commit(
        [Change(created.model_copy(update={"session_id": third.id}), new_session=NewSession(third))]
    )
    assert isinstance(failed, StoreError)
    assert await store.sessions.get(third.id) is None
