"""``openinspect users``: an admin adds a teammate and prints a one-time sign-in link for them,
against a real server; the link signs them in once; members may do neither."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx
import pytest

from openinspect.testing.server import ServerProcess
from tests.cli.helpers import cli, heavy, imported_modules

pytestmark = pytest.mark.e2e


def redeem(server: ServerProcess, url: str) -> httpx.Response:
    code = urlsplit(url).fragment.removeprefix("code=")
    return httpx.post(f"{server.url}/auth/login-link", json={"code": code}, timeout=30)


def test_an_admin_adds_a_user_and_prints_a_sign_in_link(server: ServerProcess) -> None:
    added = cli("users", "add", "Grace Hopper", "--email", "grace@example.com", server=server)
    assert added.returncode == 0, added.stderr
    assert "added Grace Hopper <grace@example.com>" in added.stdout
    listed = [
        json.loads(line) for line in cli("users", "--json", server=server).stdout.splitlines()
    ]
    grace = next(u for u in listed if u["email"] == "grace@example.com")
    assert grace["role"] == "member"
    assert grace["id"] in cli("users", server=server).stdout

    taken = cli("users", "add", "Other", "--email", "GRACE@example.com", server=server)
    assert taken.returncode != 0 and "conflict" in taken.stderr
    bad_role = cli(
        "users", "add", "X", "--email", "x@example.com", "--role", "owner", server=server
    )
    assert bad_role.returncode != 0 and "--role member" in bad_role.stderr

    # By email or by id; the link is printed whole, on a line of its own.
    by_email = cli(
        "users", "login-link", "Grace@Example.com", server=server, python_flags=("-X", "importtime")
    )
    assert by_email.returncode == 0, by_email.stderr
    assert heavy(imported_modules(by_email.stderr)) == []
    url = by_email.stdout.strip().splitlines()[-1]
    assert url.startswith(f"{server.url}/auth/link#code=oil_"), by_email.stdout
    assert "usable once" in by_email.stdout
    newer = json.loads(cli("users", "login-link", grace["id"], "--json", server=server).stdout)
    # The newer link voids the older; it signs Grace in once.
    assert redeem(server, url).json()["error"]["code"] == "login_link_expired"
    signed = redeem(server, newer["url"])
    assert signed.status_code == 200 and signed.json()["user"]["id"] == grace["id"]
    assert redeem(server, newer["url"]).json()["error"]["code"] == "login_link_used"

    unknown = cli("users", "login-link", "nobody@example.com", server=server)
    assert unknown.returncode != 0 and "No user 'nobody@example.com'" in unknown.stderr

    # Grace, a member, may not mint links (not even her own) nor add people.
    member = {"OPENINSPECT_TOKEN": signed.json()["token"]}
    for args in (("users", "login-link", grace["id"]), ("users", "add", "E", "--email", "e@x.io")):
        refused = cli(*args, server=server, env=member)
        assert refused.returncode != 0 and "forbidden" in refused.stderr, args
