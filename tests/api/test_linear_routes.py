"""The Linear agent's install routes in process: the install answers Linear's authorize URL as
JSON for the web app (or a redirect for a browser), the callback installs and says so on a
page, and Linear being down is a 503 with a hint, the state still spent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.settings import LinearSettings, SandboxSettings, ServerSettings, Settings
from openinspect.testing.asgi import InApp
from openinspect.testing.linear import FakeLinear

PUBLIC = "https://oi.example"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLinear]:
    with FakeLinear() as opened:
        yield opened


@pytest.fixture
async def plane(tmp_path: Path, fake: FakeLinear) -> AsyncIterator[ControlPlane]:
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        server=ServerSettings(public_url=PUBLIC),
        linear=LinearSettings(
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            webhook_secret="w",
            api_url=fake.api_url,
            authorize_url=fake.authorize_url,
        ),
    )
    async with open_control_plane(settings) as opened:
        yield opened


async def authorize(url: str) -> tuple[str, dict[str, str]]:
    """What the fake's authorize page sends the browser back with: (path, query)."""
    async with httpx.AsyncClient() as browser:
        approved = await browser.get(url)
    back = urlsplit(approved.headers["location"])
    return back.path, {k: v[0] for k, v in parse_qs(back.query).items()}


async def test_the_install_answers_json_and_the_callback_a_page(
    api: InApp, fake: FakeLinear, plane: ControlPlane
) -> None:
    started = await api.admin().call(
        "GET", "/integrations/linear/install", headers={"Accept": "application/json"}
    )
    assert started.status_code == 200 and started.headers["cache-control"] == "no-store"
    body = started.json()
    query = parse_qs(urlsplit(body["url"]).query)
    assert query["redirect_uri"] == [f"{PUBLIC}/integrations/linear/callback"]
    assert query["scope"] == ["read,write,app:assignable,app:mentionable"]
    assert body["expires_at"] > 0
    path, params = await authorize(body["url"])
    page = await api.http.get(path, params=params)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Linear is connected" in page.text and "Fake Org" in page.text
    assert [i.org_id for i in await plane.store.linear.installs()] == [fake.org.id]


async def test_linear_down_at_the_callback_is_a_503_with_a_hint(
    api: InApp, fake: FakeLinear, plane: ControlPlane
) -> None:
    started = await api.admin().call(
        "GET", "/integrations/linear/install", headers={"Accept": "application/json"}
    )
    path, params = await authorize(started.json()["url"])
    fake.fail_next("viewer", status=503)
    down = await api.http.get(path, params=params, headers={"Accept": "application/json"})
    assert down.status_code == 503
    error = down.json()["error"]
    assert error["code"] == "linear_unavailable" and error["hint"]
    assert await plane.store.linear.installs() == []
    again = await api.http.get(path, params=params, headers={"Accept": "application/json"})
    assert again.json()["error"]["code"] == "install_state_invalid"  # a state works once
