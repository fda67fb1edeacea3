"""Models that cannot run here are refused when the prompt is submitted — on session create and
on a prompt to an existing session — with a stable code, the fix and a likely name, and before
any sandbox boots. In-process through the ASGI app, against a real SQLite store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from openinspect.api.app import create_app
from openinspect.controlplane import open_control_plane
from openinspect.settings import SandboxSettings, Settings
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.agent.test_models import KEY_VARS
from tests.security.conftest import live_settings, recv_json, running

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    for var in KEY_VARS:  # no provider is configured: only the shipped demo scripts run
        monkeypatch.delenv(var, raising=False)
    settings = Settings(home=tmp_path / "home", sandbox=SandboxSettings(provider="process"))
    async with open_control_plane(settings) as plane:
        app = create_app(settings, plane)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert plane.bootstrap.token is not None
            yield client, {"Authorization": f"Bearer {plane.bootstrap.token}"}


def _error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    error: dict[str, str] = response.json()["error"]
    assert error["code"] == code
    return error


async def test_create_refuses_a_provider_without_a_key(
    api: tuple[httpx.AsyncClient, dict[str, str]], origin: Path
) -> None:
    client, auth = api
    for model, setting in (
        ("anthropic:claude-x", "ANTHROPIC_API_KEY"),
        ("openai:gpt-4o", "OPENAI_API_KEY"),
        ("openai-compatible:foo", "OPENAI_COMPATIBLE_BASE_URL"),
    ):
        body = {"repo": str(origin), "model": model, "prompt": "hello"}
        error = _error(
            await client.post("/api/sessions", headers=auth, json=body), 422, "model_not_configured"
        )
        assert model in error["message"] and setting in error["hint"]
    listed = (await client.get("/api/sessions", headers=auth)).json()
    assert listed["sessions"] == [], "a refused model leaves no session behind"


async def test_create_refuses_an_unknown_provider_with_a_did_you_mean(
    api: tuple[httpx.AsyncClient, dict[str, str]], origin: Path
) -> None:
    client, auth = api
    body = {"repo": str(origin), "model": "antropic:claude-sonnet-4-6"}
    error = _error(
        await client.post("/api/sessions", headers=auth, json=body), 422, "unknown_model"
    )
    assert "Did you mean anthropic:claude-sonnet-4-6?" in error["hint"]
    body = {"repo": str(origin), "model": "bogus:model"}
    _error(await client.post("/api/sessions", headers=auth, json=body), 422, "unknown_model")


async def test_a_prompt_naming_an_unconfigured_model_is_refused(
    api: tuple[httpx.AsyncClient, dict[str, str]], origin: Path
) -> None:
    client, auth = api
    created = await client.post("/api/sessions", headers=auth, json={"repo": str(origin)})
    assert created.status_code == 201, created.text
    session = created.json()["session"]
    models = (await client.get("/api/models", headers=auth)).json()
    available = {m["id"] for m in models["models"] if m["available"]}
    assert session["model"] == models["default"] and models["default"] in available
    url = f"/api/sessions/{session['id']}/prompts"
    error = _error(
        await client.post(url, headers=auth, json={"content": "hi", "model": "openai:gpt-4o"}),
        422,
        "model_not_configured",
    )
    assert "OPENAI_API_KEY" in error["hint"]
    shown = (await client.get(f"/api/sessions/{session['id']}", headers=auth)).json()
    assert shown["queue"] == [], "nothing was queued"


async def test_a_websocket_prompt_naming_an_unconfigured_model_is_refused(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    async with running(live_settings(tmp_path, llm), origin) as live:
        session = await live.session(live.admin_token)
        ws_token = await live.ws_token(live.admin_token, session["id"])
        async with live.socket(session["id"], ws_token) as ws:
            prompt = {"type": "prompt", "content": "hi", "model": "anthropic:claude-x"}
            await ws.send(json.dumps(prompt))
            error = await recv_json(ws)
    assert error["type"] == "error" and error["code"] == "model_not_configured", error
    assert "ANTHROPIC_API_KEY" in error["hint"]


async def test_a_misspelled_model_is_refused_on_create_and_on_prompt(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset({"models": ["scripted", "qwen2.5-coder"]})  # what the server's /v1/models lists
    async with running(live_settings(tmp_path, llm), origin) as live:
        body = {"repo": "calc", "model": "openai-compatible:qwen2.5-codr", "prompt": "hi"}
        made = await live.call(live.admin_token, "POST", "/api/sessions", json=body)
        error = _error(made, 422, "unknown_model")
        assert "Did you mean openai-compatible:qwen2.5-coder?" in error["hint"]
        listed = await live.call(live.admin_token, "GET", "/api/sessions")
        assert listed.json()["sessions"] == [], "a refused model leaves no session behind"

        session = await live.session(live.admin_token)
        url = f"/api/sessions/{session['id']}/prompts"
        prompt = {"content": "hi", "model": "openai-compatible:scriptd"}
        error = _error(
            await live.call(live.admin_token, "POST", url, json=prompt), 422, "unknown_model"
        )
        assert "Did you mean openai-compatible:scripted?" in error["hint"]
        ok = {"content": "hi", "model": "openai-compatible:qwen2.5-coder"}
        assert (await live.call(live.admin_token, "POST", url, json=ok)).status_code == 202
