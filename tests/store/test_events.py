"""A fenced append, on SQLite and on the real Postgres: while the writer's lease is current the
event is stored with the next seq; once another holder took the lease, the stale writer's append
raises ``LeaseLost`` and writes nothing: no event, no session change, no seq taken."""

from __future__ import annotations

import secrets

import pytest

from openinspect.domain.events import AgentText
from openinspect.errors import LeaseLost
from openinspect.store import Store
from tests.store.databases import pg_url, store_url  # noqa: F401 - fixtures
from tests.store.records import session_record
from tests.store.test_leases import expire_lease

TTL_S = 5.0


def text(session_id: str, body: str) -> AgentText:
    return AgentText(session_id=session_id, seq=0, part_id="p", text=body)


async def test_a_stale_owners_append_is_refused_and_writes_nothing(store_url: str) -> None:  # noqa: F811
    store = await Store.open(store_url)
    try:
        user = await store.users.create(name="Ada", email="ada@e", role="admin")
        session = session_record(f"ses_{secrets.token_hex(8)}", user.id)
        await store.sessions.create(session)
        name = f"session:{session.id}"
        old = await store.leases.acquire(name, "replica-a", TTL_S)
        assert old is not None

        first = await store.events.append(text(session.id, "1"), fence=old)
        assert first.event.seq == 1

        await expire_lease(store, name)
        new = await store.leases.acquire(name, "replica-b", TTL_S)
        assert new is not None and new.fence > old.fence
        with pytest.raises(LeaseLost):
            await store.events.append(
                text(session.id, "stale"), session_values={"title": "stale"}, fence=old
            )
        stored = await store.sessions.get(session.id)
        assert stored is not None and stored.last_seq == 1 and stored.title == "t"
        assert [e.seq for e in await store.events.after(session.id, 0, 10)] == [1]

        second = await store.events.append(text(session.id, "2"), fence=new)
        assert second.event.seq == 2 and second.pos > first.pos  # gap-free after the refusal
        assert await store.leases.release(new)
        with pytest.raises(LeaseLost):  # a released lease guards no write either
            await store.events.append(text(session.id, "late"), fence=new)
        assert await store.events.last_seq(session.id) == 2
    finally:
        await store.close()
