"""Per-user limits: sessions working at once (REST and WebSocket alike) and sandboxes running at
once, with real sandboxes (the process provider) and the scripted LLM."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from openinspect.settings import SandboxSettings, SessionSettings
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.security.conftest import Live, live_settings, recv_json, running

SLOW = {"turns": [{"text": "thinking slowly", "delay_ms": 8000}]}


async def _wait_status(live: Live, session_id: str, field: str, wanted: str) -> None:
    async with asyncio.timeout(60):
        while True:
            session = await live.plane.store.sessions.get(session_id)
            assert session is not None
            if getattr(session, field) == wanted:
                return
            await asyncio.sleep(0.1)


def _refused(response: Any) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "user_limit_reached" and error["hint"]
    return error


async def test_working_sessions_per_user(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    settings = live_settings(
        tmp_path, llm, sessions=SessionSettings(max_active_per_user=1, ws_auth_recheck_s=60)
    )
    llm.reset(SLOW)
    async with running(settings, origin) as live:
        _, ada = await live.member("ada")
        _, bob = await live.member("bob")
        idle = await live.session(ada)
        busy = await live.session(ada, prompt="work for a while")
        await _wait_status(live, busy["id"], "status", "active")

        # A new session, a prompt elsewhere over REST and over the WebSocket: refused.
        refused = await live.call(ada, "POST", "/api/sessions", json={"repo": "calc"})
        assert "limit is 1" in _refused(refused)["message"]
        posted = await live.call(
            ada, "POST", f"/api/sessions/{idle['id']}/prompts", json={"content": "more"}
        )
        _refused(posted)
        async with live.socket(idle["id"], await live.ws_token(ada, idle["id"])) as ws:
            await ws.send(json.dumps({"type": "prompt", "content": "more"}))
            error = await recv_json(ws)
            assert (error["type"], error["code"]) == ("error", "user_limit_reached")
        # The working session itself takes more prompts; other people are not limited by ada.
        queued = await live.call(
            ada, "POST", f"/api/sessions/{busy['id']}/prompts", json={"content": "next"}
        )
        assert queued.status_code == 202, queued.text
        assert (
            await live.call(bob, "POST", "/api/sessions", json={"repo": "calc"})
        ).status_code == 201


async def test_running_sandboxes_per_user(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    settings = live_settings(
        tmp_path,
        llm,
        sandbox=SandboxSettings(provider="process", max_running_per_user=1),
        sessions=SessionSettings(max_active_per_user=10, ws_auth_recheck_s=60),
    )
    llm.reset({"turns": [{"text": "done quickly"}]})
    async with running(settings, origin) as live:
        _, ada = await live.member("ada")
        first = await live.session(ada, prompt="quick")
        await _wait_status(live, first["id"], "sandbox_status", "ready")
        await _wait_status(live, first["id"], "status", "idle")

        # At the limit with an idle sandbox: it is stopped to make room for the next one.
        second = await live.session(ada)
        posted = await live.call(
            ada, "POST", f"/api/sessions/{second['id']}/prompts", json={"content": "quick"}
        )
        assert posted.status_code == 202, posted.text
        await _wait_status(live, first["id"], "sandbox_status", "stopped")
        await _wait_status(live, second["id"], "sandbox_status", "ready")

        # At the limit with a busy sandbox: refused.
        llm.reset(SLOW)
        third = await live.session(ada)
        busy = await live.call(
            ada, "POST", f"/api/sessions/{second['id']}/prompts", json={"content": "slow"}
        )
        assert busy.status_code == 202
        await _wait_status(live, second["id"], "status", "active")
        refused = await live.call(
            ada, "POST", f"/api/sessions/{third['id']}/prompts", json={"content": "quick"}
        )
        assert "sandboxes" in _refused(refused)["message"]
