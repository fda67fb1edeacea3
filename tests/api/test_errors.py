"""One JSON error envelope for every failure, in-process through the ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from openinspect.api.app import create_app
from openinspect.controlplane import open_control_plane
from openinspect.settings import SandboxSettings, Settings
from tests.store.databases import pg_url
from tests.store.outage import relayed

__all__ = ["pg_url"]

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    settings = Settings(home=tmp_path / "home", sandbox=SandboxSettings(provider="process"))
    async with open_control_plane(settings) as plane:
        app = create_app(settings, plane)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert plane.bootstrap.token is not None
            yield client, plane.bootstrap.token


def _shape(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "hint"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


async def test_error_envelope(api: tuple[httpx.AsyncClient, str], tmp_path: Path) -> None:
    client, token = api
    auth = {"Authorization": f"Bearer {token}"}
    _shape(await client.get("/api/sessions"), 401, "unauthenticated")
    _shape(
        await client.get("/api/sessions", headers={"Authorization": "Bearer nope"}),
        401,
        "unauthenticated",
    )
    _shape(await client.get("/api/sessions/ses_missing", headers=auth), 404, "session_not_found")
    _shape(await client.post("/api/sessions", headers=auth, json={}), 422, "invalid_input")
    _shape(
        await client.post("/api/sessions", headers=auth, json={"repo": str(tmp_path / "no")}),
        422,
        "invalid_input",
    )
    _shape(
        await client.post(
            "/api/sessions", headers=auth, json={"repo": "/tmp", "model": "nonsense"}
        ),
        422,
        "unknown_model",
    )
    _shape(
        await client.post(
            "/api/sessions",
            headers=auth,
            content=b"x" * (3 * 1024 * 1024),
        ),
        413,
        "payload_too_large",
    )
    _shape(await client.get("/api/nothing-here", headers=auth), 404, "not_found")


async def test_models_and_health(api: tuple[httpx.AsyncClient, str]) -> None:
    client, token = api
    assert (await client.get("/healthz")).json()["status"] == "ok"
    models = (await client.get("/api/models", headers={"Authorization": f"Bearer {token}"})).json()
    ids = {m["id"]: m for m in models["models"]}
    assert "anthropic:claude-sonnet-4-6" in ids
    assert ids["anthropic:claude-sonnet-4-6"]["efforts"] == ["low", "medium", "high", "max"]
    openapi = (await client.get("/api/openapi.json")).json()
    assert "/api/sessions/{session_id}/prompts" in openapi["paths"]


@pytest.mark.postgres
async def test_a_store_outage_answers_503_in_the_envelope(
    tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The database stops under a running server: requests answer 503 ``store_unavailable``
    in the error envelope (no traceback, no host or SQL), the log keeps the driver's error, and
    once the database is back the same requests work."""
    async with relayed(pg_url) as relay:
        settings = Settings(
            home=tmp_path / "home",
            database_url=relay.url,
            sandbox=SandboxSettings(provider="process"),
        )
        async with open_control_plane(settings) as plane:
            app = create_app(settings, plane)
            auth = {"Authorization": f"Bearer {plane.bootstrap.token}"}
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://test"
            ) as client:
                assert (await client.get("/api/sessions", headers=auth)).status_code == 200
                await relay.cut()
                for path in ("/api/sessions", "/api/me"):
                    down = await client.get(path, headers=auth)
                    _shape(down, 503, "store_unavailable")
                    assert down.headers["retry-after"] == "1"
                    assert down.json()["error"]["hint"]
                    for internal in ("Traceback", "127.0.0.1", str(relay.port), "SELECT"):
                        assert internal not in down.text
                assert any(r.exc_info for r in caplog.records if "store error" in r.message)
                await relay.start()
                assert (await client.get("/api/sessions", headers=auth)).status_code == 200
