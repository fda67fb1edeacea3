"""The app in-process (ASGI, with its lifespan) against the fake GitHub over real HTTP, and the
browser side of the OAuth web flow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from openinspect.api.app import create_app
from openinspect.api.routes.auth import NONCE_COOKIE
from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.people.service import People
from openinspect.settings import AuthSettings, GitHubSettings, SandboxSettings, Settings
from openinspect.testing.github import FakeGitHub

BASE = "http://test"


@dataclass
class Api:
    client: httpx.AsyncClient
    plane: ControlPlane
    admin_token: str
    fake: FakeGitHub | None

    @property
    def people(self) -> People:
        assert self.plane.people is not None
        return self.plane.people

    async def as_user(self, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kw)

    async def admin(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return await self.as_user(self.admin_token, method, path, **kw)


def settings_for(home: Path, github: GitHubSettings | None = None, **auth: Any) -> Settings:
    return Settings(
        home=home,
        sandbox=SandboxSettings(provider="process"),
        github=github or GitHubSettings(),
        auth=AuthSettings(**auth),
    )


@asynccontextmanager
async def running(settings: Settings, fake: FakeGitHub | None = None) -> AsyncIterator[Api]:
    async with open_control_plane(settings) as plane:
        app = create_app(settings, plane)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            assert plane.bootstrap.token is not None
            yield Api(client, plane, plane.bootstrap.token, fake)


async def start_login(api: Api, next_path: str = "/") -> str:
    """``/auth/github/login``: returns GitHub's authorize URL (the nonce cookie is now set)."""
    started = await api.client.get("/auth/github/login", params={"next": next_path})
    assert started.status_code == 302, started.text
    assert NONCE_COOKIE in started.cookies
    return started.headers["location"]


async def authorize_at_github(authorize_url: str) -> str:
    """The browser at GitHub's authorize page: returns where GitHub sends it back (path and
    query on our server)."""
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(authorize_url)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["location"])
    assert back.netloc == "test" and back.path == "/auth/github/callback"
    return f"{back.path}?{back.query}"


async def web_sign_in(api: Api, login: str, next_path: str = "/", **headers: str) -> httpx.Response:
    """The whole web flow for ``login``; returns the callback's answer."""
    assert api.fake is not None
    api.fake.set_oauth_user(login)
    callback = await authorize_at_github(await start_login(api, next_path))
    return await api.client.get(callback, headers=headers)


def fragment(response: httpx.Response) -> dict[str, str]:
    """The ``#token=…&next=…`` of a redirect to ``/auth/complete``."""
    location = urlsplit(response.headers["location"])
    assert location.path == "/auth/complete", response.headers["location"]
    return {k: v[0] for k, v in parse_qs(location.fragment).items()}


def signin_error(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert location.path == "/signin", response.headers["location"]
    return parse_qs(location.query)["error"][0]
