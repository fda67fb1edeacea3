"""``openinspect login`` / ``logout`` / ``tokens``: signing the CLI in to a server.

``login`` runs GitHub's device flow *through the server* (the OAuth client secret never leaves
it): the server asks GitHub for a code, the person enters it on GitHub, the CLI polls the server
until it answers with an openinspect token, which is kept in ``credentials.json`` (0600).
``login --token`` stores a token made elsewhere (the web app, ``tokens create``) instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from openinspect.cli.client import HTTP_TIMEOUT_S, ApiError, Client, Target, discover
from openinspect.cli.credentials import Credentials
from openinspect.cli.local import DEFAULT_PORT, SERVER_FILE
from openinspect.errors import AuthError, ConfigError

SLOW_DOWN_STEP_S = 5.0
MIN_POLL_S = 0.05


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")


def server_url(explicit: str | None, home: Path) -> str:
    """The server to sign in to: ``--url``, OPENINSPECT_URL, the current login, or this
    machine's server."""
    url = explicit or os.environ.get("OPENINSPECT_URL")
    if not url:
        url = Credentials.load(home).current
    if not url:
        info = home / SERVER_FILE
        url = json.loads(info.read_text())["url"] if info.exists() else None
    return (url or f"http://127.0.0.1:{DEFAULT_PORT}").rstrip("/")


def _error(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        error = {"code": "http_error", "message": response.text[:500], "hint": None}
    return ApiError(response.status_code, error["code"], error["message"], error.get("hint"))


async def _post(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    try:
        return await http.post(path, json=body)
    except httpx.ConnectError as exc:
        raise ConfigError(
            f"Cannot reach the server at {http.base_url}",
            hint="Pass --url, or set OPENINSPECT_URL",
        ) from exc


def _save(home: Path, url: str, token: str, user: dict[str, Any]) -> None:
    credentials = Credentials.load(home)
    credentials.set(url, token, user_id=user.get("id"), login=user.get("github_login"))
    credentials.save()


def _signed_in(console: Console, url: str, user: dict[str, Any], home: Path) -> None:
    who = f"@{user['github_login']}" if user.get("github_login") else user["name"]
    console.print(f"Signed in to {url} as [bold]{escape(who)}[/] ({user['role']})")
    console.print(f"[dim]token kept in {Credentials.load(home).path}[/]")


async def device_login(console: Console, home: Path, url: str) -> int:
    """Sign in with GitHub's device flow, through the server."""
    name = f"openinspect login ({platform.node() or 'cli'})"
    async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT_S) as http:
        started = await _post(http, "/auth/github/device", {})
        if started.status_code != 200:
            raise _error(started)
        code = started.json()
        console.print(
            f"Open [bold]{escape(code['verification_uri'])}[/] and enter the code "
            f"[bold cyan]{escape(code['user_code'])}[/]"
        )
        interval = max(float(code["interval_s"]), MIN_POLL_S)
        deadline = time.monotonic() + float(code["expires_in_s"])
        with console.status("waiting for you to approve on GitHub…"):
            while time.monotonic() < deadline:
                await asyncio.sleep(interval)
                answer = await _post(
                    http,
                    "/auth/github/device/token",
                    {"device_code": code["device_code"], "name": name},
                )
                if answer.status_code == 200:
                    signed = answer.json()
                    _save(home, url, signed["token"], signed["user"])
                    _signed_in(console, url, signed["user"], home)
                    return 0
                error = _error(answer)
                if error.api_code == "authorization_pending":
                    continue
                if error.api_code == "slow_down":
                    retry = answer.headers.get("retry-after")
                    interval = float(retry) if retry else interval + SLOW_DOWN_STEP_S
                    continue
                raise error
    raise ApiError(410, "expired", "The code expired before it was entered", "Run login again")


async def token_login(console: Console, home: Path, url: str, token: str) -> int:
    """Keep a token made elsewhere, after checking that the server accepts it."""
    async with Client(Target(url, token)) as client:
        user = await client.request("GET", "/api/me")
    _save(home, url, token, user)
    _signed_in(console, url, user, home)
    return 0


async def logout(console: Console, home: Path, url: str) -> int:
    """Revoke the stored token of ``url`` on the server (best effort) and forget it."""
    credentials = Credentials.load(home)
    token = credentials.token_for(url)
    if token is None:
        console.print(f"Not signed in to {url}")
        return 0
    try:
        async with Client(Target(url, token)) as client:
            await client.request("POST", "/auth/logout")
    except (AuthError, ConfigError, ApiError) as exc:
        console.print(f"[dim]could not revoke the token on the server: {escape(exc.message)}[/]")
    credentials.remove(url)
    credentials.save()
    console.print(f"Signed out of {url}")
    if os.environ.get("OPENINSPECT_TOKEN"):
        console.print("[yellow]OPENINSPECT_TOKEN is still set in this shell[/]")
    return 0


async def tokens_list(console: Console, json_out: bool) -> int:
    async with Client(discover()) as client:
        data = await client.request("GET", "/api/tokens")
    if json_out:
        for token in data["tokens"]:
            _emit(token)
        return 0
    table = Table("id", "name", "kind", "prefix", "created", "last used", "expires", "")
    for t in data["tokens"]:
        table.add_row(
            t["id"],
            escape(t["name"]),
            t["kind"],
            t["prefix"] + "…",
            t["created_at"][:19],
            (t["last_used_at"] or "never")[:19],
            (t["expires_at"] or "never")[:19],
            "current" if t["current"] else "",
        )
    console.print(table)
    return 0


async def tokens_create(console: Console, name: str, days: int | None, json_out: bool) -> int:
    async with Client(discover()) as client:
        created = await client.request(
            "POST", "/api/tokens", json={"name": name, "expires_in_days": days}
        )
    if json_out:
        _emit(created)
    else:
        sys.stdout.write(created["token"] + "\n")
        console.print("[dim]Shown once; only a hash is kept on the server.[/]")
    return 0


async def tokens_revoke(console: Console, token_id: str) -> int:
    async with Client(discover()) as client:
        await client.request("DELETE", f"/api/tokens/{token_id}")
    console.print(f"revoked {token_id}")
    return 0
