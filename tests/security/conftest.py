"""A real server in this process (uvicorn on loopback TCP, SQLite, the scripted LLM), an admin,
members made in the store, and helpers to talk to it as each of them over HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from openinspect.api.server import Started, serve
from openinspect.controlplane import ControlPlane
from openinspect.settings import (
    AgentSettings,
    ModelProviderSettings,
    SandboxSettings,
    ServerSettings,
    SessionSettings,
    Settings,
)
from openinspect.testing.llm_server import ScriptedLLMServer

MODEL = "openai-compatible:scripted"
CLIENT_MAX_FRAME = 16 * 1024 * 1024  # what the CLI client accepts (cli/client.py)


@dataclass
class Live:
    url: str
    plane: ControlPlane
    admin_token: str
    http: httpx.AsyncClient

    async def call(self, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kw)

    async def member(self, name: str) -> tuple[str, str]:
        """A new member: (user id, API token)."""
        users = self.plane.store.users
        user = await users.create(name=name, email=f"{name}@example.com", role="member")
        return user.id, await users.create_token(user.id, f"{name}'s token")

    async def session(self, token: str, **body: Any) -> dict[str, Any]:
        made = await self.call(token, "POST", "/api/sessions", json={"repo": "calc", **body})
        assert made.status_code == 201, made.text
        session: dict[str, Any] = made.json()["session"]
        return session

    async def ws_token(self, token: str, session_id: str) -> str:
        minted = await self.call(token, "POST", f"/api/sessions/{session_id}/ws-token")
        assert minted.status_code == 200, minted.text
        value: str = minted.json()["token"]
        return value

    def ws_url(self, session_id: str) -> str:
        return self.url.replace("http://", "ws://") + f"/api/sessions/{session_id}/ws"

    @asynccontextmanager
    async def socket(
        self, session_id: str, ws_token: str | None = None, **kw: Any
    ) -> AsyncIterator[ClientConnection]:
        """A raw WebSocket; subscribed (its ``subscribed`` frame read) when a token is given."""
        async with websockets.connect(
            self.ws_url(session_id), max_size=CLIENT_MAX_FRAME, **kw
        ) as ws:
            if ws_token is not None:
                await ws.send(json.dumps({"type": "subscribe", "token": ws_token}))
                first = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert first["type"] == "subscribed", first
            yield ws


async def recv_json(ws: ClientConnection, timeout_s: float = 10) -> dict[str, Any]:
    """The next frame that is not an event or presence broadcast."""
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
        if frame["type"] not in ("event", "presence"):
            return frame


async def close_code(ws: ClientConnection, timeout_s: float = 10) -> int | None:
    """Read until the server closes; the close code it sent."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed:
        pass
    return ws.close_code


def live_settings(tmp_path: Path, llm: ScriptedLLMServer, **sections: Any) -> Settings:
    defaults: dict[str, Any] = {
        "home": tmp_path / "home",
        "server": ServerSettings(port=0),
        "sandbox": SandboxSettings(provider="process"),
        "agent": AgentSettings(default_model=MODEL),
        "models": ModelProviderSettings(openai_compatible_base_url=llm.openai_base_url),
        "sessions": SessionSettings(ws_auth_recheck_s=0.5),
    }
    return Settings(**{**defaults, **sections})


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Started]:
    """The server in this process, stopped gracefully when the block ends."""
    started: asyncio.Future[Started] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(settings, on_started=started.set_result, install_signal_handlers=False, stop=stop)
    )
    try:
        yield await asyncio.wait_for(asyncio.shield(started), timeout=30)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


@asynccontextmanager
async def running(settings: Settings, origin: Path) -> AsyncIterator[Live]:
    """The server, with ``origin`` registered as the repo ``calc`` (members may use it)."""
    async with serving(settings) as info:
        token = info.plane.bootstrap.token
        assert token is not None
        async with httpx.AsyncClient(base_url=info.url, timeout=30) as http:
            live = Live(info.url, info.plane, token, http)
            repo = await live.call(
                token, "POST", "/api/repos", json={"name": "calc", "url": str(origin)}
            )
            assert repo.status_code == 201, repo.text
            yield live


@pytest.fixture
async def live(tmp_path: Path, llm: ScriptedLLMServer, origin: Path) -> AsyncIterator[Live]:
    async with running(live_settings(tmp_path, llm), origin) as server:
        yield server
