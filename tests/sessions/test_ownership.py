"""Several replicas in one process, on the real Postgres and Redis: a session is live on the one
replica that holds its lease; a command through any other replica is forwarded to it and answers
(or fails) as if it ran there; a replica that lost the lease writes nothing more; a dead owner's
session is taken over with its running prompt interrupted, and a replica that starts next to a
live one leaves that one's prompts alone; idle sessions leave memory and free their lease."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from openinspect.bus import open_bus
from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.domain.commands import (
    CancelPrompt,
    StartSession,
    Stop,
    SubmitPrompt,
    UpdateSession,
)
from openinspect.domain.events import AgentText
from openinspect.domain.models import Author, Session, User
from openinspect.errors import LeaseLost, OwnerGone, PromptNotFound, SessionMoved
from openinspect.settings import (
    OwnershipSettings,
    SandboxSettings,
    ServiceSettings,
    SessionSettings,
    Settings,
)
from openinspect.store.owners import lease_name
from tests.bus.test_bus import REDIS_URL
from tests.conftest import skip_or_fail
from tests.store.records import prompt_record
from tests.store.test_leases import expire_lease
from tests.store.test_migrations import throwaway_pg_database

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
Replicas = Callable[[str], Awaitable[ControlPlane]]


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[Replicas]:
    """``await replicas("a")`` starts a replica (its own home) on one Postgres database and
    the Redis bus. Failover and eviction passes are left to each test (they are called)."""
    probe = open_bus(REDIS_URL)
    try:
        await probe.publish("ping", "x")
    except OSError as exc:
        skip_or_fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    finally:
        await probe.close()
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(throwaway_pg_database())

        async def start(name: str) -> ControlPlane:
            settings = Settings(
                home=tmp_path / name,
                database_url=url,
                bus_url=REDIS_URL,
                sandbox=SandboxSettings(provider="process"),
                sessions=SessionSettings(tidy_interval_s=0),
                services=ServiceSettings(failover_enabled=False, evict_enabled=False),
                ownership=OwnershipSettings(forward_timeout_s=10),
            )
            return await stack.enter_async_context(open_control_plane(settings))

        yield start


async def admin_of(plane: ControlPlane) -> User:
    return (await plane.store.users.list_all())[0]


async def new_session(plane: ControlPlane, origin: Path) -> Session:
    started = await plane.commands.handle(
        await admin_of(plane), StartSession(repo=str(origin)), origin="api"
    )
    return started.session


async def test_a_command_through_any_replica_runs_on_the_owner(
    replicas: Replicas, origin: Path
) -> None:
    a, b = await replicas("a"), await replicas("b")
    admin = await admin_of(a)
    session = await new_session(a, origin)
    assert await a.store.owners.holder(session.id) is None  # created, not live anywhere

    renamed = await b.commands.handle(
        admin, UpdateSession(session_id=session.id, title="on b"), origin="api"
    )
    assert renamed.title == "on b"
    assert await a.store.owners.holder(session.id) == b.manager.replica_id

    # Through A: forwarded to B, answered with the same types, and nothing live on A.
    again = await a.commands.handle(
        admin, UpdateSession(session_id=session.id, title="through a"), origin="api"
    )
    assert isinstance(again, Session) and again.title == "through a"
    assert await a.commands.handle(admin, Stop(session_id=session.id), origin="api") is False
    with pytest.raises(PromptNotFound) as refused:  # the owner's error, raised here again
        await a.commands.handle(
            admin, CancelPrompt(session_id=session.id, prompt_id="prm_none"), origin="api"
        )
    assert refused.value.code == "prompt_not_found" and "prm_none" in refused.value.message
    assert a.manager.live_actors() == [] and len(b.manager.live_actors()) == 1
    titles = [
        e.title
        for e in await a.store.events.after(session.id, 0, 100)
        if e.type == "session-updated"
    ]  # type: ignore[union-attr]
    assert titles == ["on b", "through a"]


async def test_a_replica_that_lost_the_lease_writes_nothing_and_lets_go(
    replicas: Replicas, origin: Path
) -> None:
    a, b = await replicas("a"), await replicas("b")
    admin = await admin_of(a)
    session = await new_session(a, origin)
    stale = await b.manager.actor(session.id)
    await stale.rename("b owns it")
    seq = (await a.store.sessions.get(session.id)).last_seq  # type: ignore[union-attr]

    # B stalls past its TTL; A takes the session over.
    await expire_lease(a.store, lease_name(session.id))
    taken = await a.manager.owned_actor(session.id)
    assert taken is not None and taken.lease is not None
    assert stale.lease is not None and taken.lease.fence > stale.lease.fence

    with pytest.raises(LeaseLost):  # B's next append is fenced off
        await stale.emit(AgentText(session_id=session.id, seq=0, part_id="p", text="late"))
    await asyncio.sleep(0.1)  # the drop runs on its own task
    assert stale.closed and b.manager.live_actors() == []
    with pytest.raises(SessionMoved):
        await stale.rename("too late")
    stored = await a.store.events.after(session.id, 0, 100)
    assert [e.seq for e in stored] == list(range(1, seq + 1))  # nothing landed, no gap

    # B now forwards to A, and A appends right after the last seq.
    await b.commands.handle(admin, UpdateSession(session_id=session.id, title="a"), origin="api")
    assert (await a.store.events.after(session.id, seq, 10))[0].seq == seq + 1


async def test_a_renewal_that_fails_stops_the_actor(replicas: Replicas, origin: Path) -> None:
    a, b = await replicas("a"), await replicas("b")
    session = await new_session(a, origin)
    actor = await b.manager.actor(session.id)
    assert await b.manager.ownership.renew() == []  # held: renewed
    await expire_lease(a.store, lease_name(session.id))
    assert await a.manager.owned_actor(session.id) is not None
    assert await b.manager.ownership.renew() == [session.id]
    assert actor.closed and b.manager.live_actors() == []
    assert b.manager.ownership.lease(session.id) is None


async def test_a_dead_owners_session_is_taken_over_and_a_new_replica_spares_live_ones(
    replicas: Replicas, origin: Path
) -> None:
    a, b = await replicas("a"), await replicas("b")
    admin = await admin_of(a)
    live, orphan = await new_session(a, origin), await new_session(a, origin)
    prompts = {}
    for session in (live, orphan):
        await b.manager.actor(session.id)  # B owns both and "runs" a prompt in each
        prompt = prompt_record(session.id, Author.of(admin))
        await b.store.prompts.create(prompt, "print")
        assert await b.store.prompts.set_status(prompt.id, "running", only_if=("queued",))
        prompts[session.id] = prompt.id

    # A third replica starts (its start-up recovery runs): B is alive, nothing is touched.
    c = await replicas("c")
    assert c.manager.live_actors() == []
    for session in (live, orphan):
        assert (await c.store.prompts.get(prompts[session.id])).status == "running"  # type: ignore[union-attr]

    # B's lease on one session runs out (it died for that session): a failover pass takes it.
    await expire_lease(a.store, lease_name(orphan.id))
    assert await a.manager.adopt_orphans() == [orphan.id]
    assert await c.manager.adopt_orphans() == []  # one replica wins
    assert (await a.store.prompts.get(prompts[orphan.id])).status == "interrupted"  # type: ignore[union-attr]
    assert (await a.store.prompts.get(prompts[live.id])).status == "running"  # type: ignore[union-attr]
    last = (await a.store.events.before(orphan.id, None, 2))[-1]
    assert last.type == "prompt-finished" and last.status == "interrupted"  # type: ignore[union-attr]
    seqs = [e.seq for e in await a.store.events.after(orphan.id, 0, 100)]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_idle_sessions_leave_memory_and_free_their_lease(
    replicas: Replicas, origin: Path
) -> None:
    a = await replicas("a")
    sessions = [await new_session(a, origin) for _ in range(3)]
    for session in sessions:
        await a.manager.actor(session.id)
    busy = sessions[0]
    prompt = prompt_record(busy.id, Author.of(await admin_of(a)))
    await a.store.prompts.create(prompt, "print")  # queued: its actor must stay

    assert await a.manager.evict_idle(3600) == []  # they worked just now
    evicted = await a.manager.evict_idle(0)
    assert sorted(evicted) == sorted(s.id for s in sessions[1:])
    assert [x.session.id for x in a.manager.live_actors()] == [busy.id]
    for session in sessions[1:]:
        assert await a.store.owners.holder(session.id) is None
        assert session.id not in a.manager.deps.events._last_seq
    # The next command loads it again, here or anywhere.
    assert (await a.manager.actor(sessions[1].id)).session.id == sessions[1].id


async def test_forwarded_answers_are_bounded_and_garbage_is_dropped(
    replicas: Replicas, origin: Path
) -> None:
    a, b = await replicas("a"), await replicas("b")
    admin = await admin_of(a)
    session = await new_session(a, origin)
    await b.manager.actor(session.id)
    bus = open_bus(REDIS_URL)
    try:
        channel = f"replica:{b.manager.replica_id}"
        for junk in ("not json", '{"kind": "command"}', "x" * (5 * 1024 * 1024)):
            await bus.publish(channel, junk)
    finally:
        await bus.close()
    title = f"still {secrets.token_hex(2)}"
    done = await a.commands.handle(
        admin, UpdateSession(session_id=session.id, title=title), origin="api"
    )
    assert done.title == title


async def test_a_command_waiting_on_a_dead_owner_moves_on_when_its_lease_ends(
    replicas: Replicas, origin: Path
) -> None:
    """The owner stops answering, then its lease ends (as when it is killed): a command that
    is safe to repeat is carried out by the next owner; a prompt without a client_request_id
    is refused with ``owner_gone`` rather than risk queueing it twice."""
    a, b, c = await replicas("a"), await replicas("b"), await replicas("c")
    admin = await admin_of(a)
    session = await new_session(a, origin)

    async def dies(replica: ControlPlane) -> None:
        await replica.commands.forwarder.stop()  # no answer from here on
        await asyncio.sleep(1.5)
        await replica.manager.ownership.stop()  # and its leases end

    await b.manager.actor(session.id)
    dying = asyncio.create_task(dies(b))
    renamed = await a.commands.handle(
        admin, UpdateSession(session_id=session.id, title="after b"), origin="api"
    )
    await dying
    assert renamed.title == "after b"
    assert await a.store.owners.holder(session.id) == a.manager.replica_id

    dying = asyncio.create_task(dies(a))
    with pytest.raises(OwnerGone):
        await c.commands.handle(
            admin, SubmitPrompt(session_id=session.id, content="once"), origin="api"
        )
    await dying
    assert await c.store.prompts.unfinished(session.id) == []


async def test_a_fenced_off_owner_hands_a_prompt_it_did_not_start_back_to_the_queue(
    replicas: Replicas, origin: Path
) -> None:
    """B was taken over before it noticed; its queue runner then picks a prompt: the start is
    fenced off, and the prompt goes back to ``queued`` (not left ``running`` with nobody
    running it), with no ``prompt-started`` in the log."""
    a, b = await replicas("a"), await replicas("b")
    admin = await admin_of(a)
    session = await new_session(a, origin)
    stale = await b.manager.actor(session.id)
    await expire_lease(a.store, lease_name(session.id))
    assert await a.manager.owned_actor(session.id) is not None
    prompt = prompt_record(session.id, Author.of(admin))
    await a.store.prompts.create(prompt, "print")

    stale.start()
    for _ in range(100):
        if stale.closed:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert stale.closed
    assert (await a.store.prompts.get(prompt.id)).status == "queued"  # type: ignore[union-attr]
    events = await a.store.events.after(session.id, 0, 100)
    assert all(e.type != "prompt-started" for e in events)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
