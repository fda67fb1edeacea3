"""The session WebSocket on the real Postgres: with two replicas (two servers in this process,
uvicorn on loopback TCP, sharing Postgres and Redis) a watcher on each sees the other join, change
status and leave; when the database stops under an open socket, commands answer
``store_unavailable`` and work again once it is back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from openinspect.api.server import Started
from openinspect.bus import open_bus
from openinspect.domain.events import utcnow
from openinspect.settings import (
    DEFAULT_PRESENCE_TTL_S,
    SandboxSettings,
    ServerSettings,
    SessionSettings,
    Settings,
)
from tests.bus.test_bus import REDIS_URL
from tests.conftest import skip_or_fail
from tests.security.conftest import serving
from tests.store.outage import relayed
from tests.store.test_migrations import pg_url

__all__ = ["pg_url"]
Participants = list[dict[str, Any]]
TTL_S = 1.0


@pytest.fixture
async def redis_url() -> str:
    bus = open_bus(REDIS_URL)
    try:
        await bus.publish("ping", "x")
    except OSError as exc:
        skip_or_fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    finally:
        await bus.close()
    return REDIS_URL


def _replica(
    home: Path, database_url: str, bus_url: str, presence_ttl_s: float = DEFAULT_PRESENCE_TTL_S
) -> AbstractAsyncContextManager[Started]:
    return serving(
        Settings(
            home=home,
            database_url=database_url,
            bus_url=bus_url,
            server=ServerSettings(port=0),
            sandbox=SandboxSettings(provider="process"),
            sessions=SessionSettings(presence_ttl_s=presence_ttl_s),
        )
    )


async def _watch(replica: Started, token: str, session_id: str) -> tuple[ClientConnection, Any]:
    async with httpx.AsyncClient(base_url=replica.url, timeout=30) as http:
        minted = await http.post(
            f"/api/sessions/{session_id}/ws-token", headers={"Authorization": f"Bearer {token}"}
        )
    assert minted.status_code == 200, minted.text
    url = replica.url.replace("http://", "ws://") + f"/api/sessions/{session_id}/ws"
    ws = await websockets.connect(url)
    await ws.send(json.dumps({"type": "subscribe", "token": minted.json()["token"]}))
    subscribed = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert subscribed["type"] == "subscribed", subscribed
    return ws, subscribed


async def _presence_until(ws: ClientConnection, wanted: Callable[[Participants], bool]) -> None:
    """Read presence frames until one satisfies ``wanted`` (fails after 10 s)."""
    seen: list[Participants] = []
    try:
        async with asyncio.timeout(10):
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "presence":
                    seen.append(frame["participants"])
                    if wanted(frame["participants"]):
                        return
    except TimeoutError:
        raise AssertionError(f"no such presence; saw {seen}") from None


def _who(participants: Participants) -> dict[str, tuple[str, int]]:
    return {p["name"]: (p["status"], p["clients"]) for p in participants}


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_watcher_on_each_replica_sees_the_other(
    tmp_path: Path, pg_url: str, redis_url: str, origin: Path
) -> None:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(_replica(tmp_path / "a", pg_url, redis_url))
        b = await stack.enter_async_context(_replica(tmp_path / "b", pg_url, redis_url))
        ada_token = a.plane.bootstrap.token
        assert ada_token is not None
        users = b.plane.store.users
        ada = await users.authenticate(ada_token)
        assert ada is not None
        bob = await users.create(name="Bob", email="bob@example.com", role="admin")
        bob_token = await users.create_token(bob.id, "bob's token")
        session = await a.plane.manager.create(ada, repo=str(origin))

        ada_ws, _ = await _watch(a, ada_token, session.id)
        stack.push_async_callback(ada_ws.close)
        bob_ws, subscribed = await _watch(b, bob_token, session.id)
        # B's snapshot comes from the store: Ada, who is connected to A, is in it.
        assert _who(subscribed["participants"]) == {ada.name: ("active", 1)}
        both = {ada.name: ("active", 1), "Bob": ("active", 1)}
        await _presence_until(ada_ws, lambda p: _who(p) == both)  # through Redis, from B
        await _presence_until(bob_ws, lambda p: _who(p) == both)

        await bob_ws.send(json.dumps({"type": "presence", "status": "idle"}))
        bob_idle = {ada.name: ("active", 1), "Bob": ("idle", 1)}
        await _presence_until(ada_ws, lambda p: _who(p) == bob_idle)

        await bob_ws.close()
        await _presence_until(ada_ws, lambda p: _who(p) == {ada.name: ("active", 1)})
        assert _who(await b.plane.manager.presence.snapshot(session.id)) == {
            ada.name: ("active", 1)
        }


@pytest.mark.postgres
@pytest.mark.redis
async def test_the_watchers_of_a_replica_that_lost_the_database_vanish_from_the_others(
    tmp_path: Path, pg_url: str, redis_url: str, origin: Path
) -> None:
    """Replica B is cut off from the database (as good as dead to the others: it can neither
    renew nor remove its rows). Within the TTL its watcher runs out, A's heartbeat prunes it,
    and A's watcher is told."""
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(
            _replica(tmp_path / "a", pg_url, redis_url, presence_ttl_s=TTL_S)
        )
        b_link = await stack.enter_async_context(relayed(pg_url))
        b = await stack.enter_async_context(
            _replica(tmp_path / "b", b_link.url, redis_url, presence_ttl_s=TTL_S)
        )
        token = a.plane.bootstrap.token
        assert token is not None
        ada = await a.plane.store.users.authenticate(token)
        assert ada is not None
        session = await a.plane.manager.create(ada, repo=str(origin))
        ada_ws, _ = await _watch(a, token, session.id)
        stack.push_async_callback(ada_ws.close)
        bob_ws, _ = await _watch(b, token, session.id)  # the same person, a second tab on B
        stack.push_async_callback(bob_ws.close)
        await _presence_until(ada_ws, lambda p: _who(p) == {ada.name: ("active", 2)})

        await b_link.cut()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await _presence_until(ada_ws, lambda p: _who(p) == {ada.name: ("active", 1)})
        assert loop.time() - started < TTL_S * 5


@pytest.mark.postgres
async def test_a_store_outage_under_an_open_socket_answers_store_unavailable(
    tmp_path: Path, pg_url: str, origin: Path
) -> None:
    async with relayed(pg_url) as relay:
        replica = _replica(tmp_path / "a", relay.url, "memory://")
        async with replica as server:
            token = server.plane.bootstrap.token
            assert token is not None
            ada = await server.plane.store.users.authenticate(token)
            assert ada is not None
            session = await server.plane.manager.create(ada, repo=str(origin))
            ws, _ = await _watch(server, token, session.id)
            try:
                # Joined (presence announced) and marked watched: the socket is settled.
                await _presence_until(ws, lambda p: _who(p) == {ada.name: ("active", 1)})
                sessions, since = server.plane.store.sessions, utcnow() - timedelta(minutes=1)
                async with asyncio.timeout(10):
                    while not await sessions.watched_since([session.id], since):
                        await asyncio.sleep(0.05)
                history = json.dumps({"type": "history", "before_seq": 5})
                await relay.cut()
                await ws.send(history)
                error = await _next_of(ws, "error")
                assert error["code"] == "store_unavailable" and error["hint"]
                assert str(relay.port) not in json.dumps(error)
                await relay.start()
                await ws.send(history)
                assert (await _next_of(ws, "history-page"))["events"] is not None
            finally:
                await ws.close()


async def _next_of(ws: ClientConnection, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame
