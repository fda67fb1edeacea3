"""Presence over the session WebSocket with two replicas: two servers in this process (uvicorn on
loopback TCP) share the real Postgres and Redis, a watcher connects to each, and each sees the
other join, change status and leave."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from openinspect.api.server import Started
from openinspect.bus import open_bus
from openinspect.settings import SandboxSettings, ServerSettings, Settings
from tests.bus.test_bus import REDIS_URL
from tests.conftest import skip_or_fail
from tests.security.conftest import serving
from tests.store.test_migrations import pg_url

__all__ = ["pg_url"]
pytestmark = [pytest.mark.postgres, pytest.mark.redis]
Participants = list[dict[str, Any]]


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


def _replica(home: Path, database_url: str, bus_url: str) -> AbstractAsyncContextManager[Started]:
    return serving(
        Settings(
            home=home,
            database_url=database_url,
            bus_url=bus_url,
            server=ServerSettings(port=0),
            sandbox=SandboxSettings(provider="process"),
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
