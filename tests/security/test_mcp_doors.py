"""The MCP servers API as a door: only admins configure servers, a credential goes in and never
comes out (not in a listing, a change, or an error), and what is not a server's address,
header, command or name is refused with a reason that quotes no header value."""

from __future__ import annotations

import json

import httpx
import pytest

from openinspect.controlplane import ControlPlane
from openinspect.testing.asgi import InApp

TOKEN = "mcp-CRED-api-0a1b2c3d4e5f6071"


def no_credential_in(response: httpx.Response) -> None:
    assert TOKEN not in response.text and "CRED-api" not in response.text, response.text


HTTP = {"transport": "http", "url": "https://tools.example.com/mcp"}


async def test_members_cannot_add_change_or_remove_servers(api: InApp, calc: str) -> None:
    admin, bob = api.admin(), await api.member("bob")
    made = await admin.call(
        "PUT", "/api/mcp-servers/tracker", json={**HTTP, "headers": {"Authorization": TOKEN}}
    )
    assert made.status_code == 200, made.text
    for method, params in (("PUT", {}), ("PUT", {"repo": calc}), ("DELETE", {})):
        body = {**HTTP, "url": "https://evil.example.com/mcp"} if method == "PUT" else None
        refused = await bob.call(method, "/api/mcp-servers/tracker", params=params, json=body)
        assert refused.status_code == 403, refused.text
    stdio = {"transport": "stdio", "command": ["python3", "server.py"]}
    refused = await bob.call("PUT", "/api/mcp-servers/boxy", params={"repo": calc}, json=stdio)
    assert refused.status_code == 403
    # What is configured is what the admin set.
    listed = await bob.call("GET", "/api/mcp-servers")
    assert listed.status_code == 200
    [server] = listed.json()["servers"]
    assert server["url"] == HTTP["url"]
    no_credential_in(listed)


async def test_a_credential_is_write_only(api: InApp, calc: str, plane: ControlPlane) -> None:
    admin = api.admin()
    made = await admin.call(
        "PUT",
        "/api/mcp-servers/tracker",
        params={"repo": calc},
        json={**HTTP, "headers": {"Authorization": f"Bearer {TOKEN}"}},
    )
    assert made.status_code == 200
    assert made.json()["header_names"] == ["Authorization"]
    no_credential_in(made)
    # A change without headers keeps them; the answer still has only their names.
    changed = await admin.call(
        "PUT", "/api/mcp-servers/tracker", params={"repo": calc}, json={**HTTP, "tools": ["a"]}
    )
    assert changed.json()["header_names"] == ["Authorization"] and changed.json()["tools"] == ["a"]
    no_credential_in(changed)
    for params in ({}, {"repo": calc}):
        listed = await admin.call("GET", "/api/mcp-servers", params=params)
        no_credential_in(listed)
    # The value is kept sealed, and opens only for the repo's prompts.
    repo = await plane.store.repos.find(calc)
    assert repo is not None
    [opened] = await plane.store.mcp_servers.for_repo(repo.id)
    assert opened.headers == {"Authorization": f"Bearer {TOKEN}"}
    # A refused change quotes no value.
    bad = await admin.call(
        "PUT",
        "/api/mcp-servers/tracker",
        json={**HTTP, "headers": {"Authorization": f"Bearer {TOKEN}\r\nX-Evil: 1"}},
    )
    assert bad.status_code == 422
    no_credential_in(bad)
    spec = (await admin.call("GET", "/openapi.json")).text
    assert TOKEN not in spec


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://tools.example.com/mcp",
        "gopher://127.0.0.1:70/",
        "javascript:alert(1)",
        "unix:///run/docker.sock",
        "https://user:pw@tools.example.com/mcp",
        "https:///mcp",
        "https://tools.example.com/ mcp",
        "http://tools.example.com:99999/mcp",
        "https://tools.example.com/" + "a" * 3000,
    ],
)
async def test_a_server_address_that_is_not_http_is_refused(api: InApp, url: str) -> None:
    answer = await api.admin().call(
        "PUT", "/api/mcp-servers/bad", json={"transport": "http", "url": url}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] in ("mcp_server_invalid", "invalid_input")
    assert (await api.admin().call("GET", "/api/mcp-servers")).json()["servers"] == []


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("Upper", HTTP),
        ("two__parts", HTTP),
        ("a" * 33, HTTP),
        ("ok", {"transport": "sse", "url": HTTP["url"]}),
        ("ok", {"transport": "http"}),
        ("ok", {**HTTP, "command": ["python3"]}),
        ("ok", {**HTTP, "headers": {"Host": "x"}}),
        ("ok", {**HTTP, "headers": {"Bad Name": "x"}}),
        ("ok", {**HTTP, "headers": {f"H{i}": "x" for i in range(9)}}),
        ("ok", {**HTTP, "headers": {"Authorization": "x" * 5000}}),
        ("ok", {"transport": "stdio"}),
        ("ok", {"transport": "stdio", "command": []}),
        ("ok", {"transport": "stdio", "command": ["a\u0000b"]}),
        ("ok", {"transport": "stdio", "command": ["x"] * 33}),
        ("ok", {"transport": "stdio", "command": ["x"], "headers": {"Authorization": TOKEN}}),
        ("ok", {"transport": "stdio", "command": ["x"], "url": HTTP["url"]}),
        ("ok", {**HTTP, "tools": ["no spaces"]}),
        ("ok", {**HTTP, "tools": ["t"] * 101}),
        ("ok", {**HTTP, "extra": True}),
    ],
)
async def test_what_is_not_a_server_is_refused(
    api: InApp, name: str, body: dict[str, object]
) -> None:
    answer = await api.admin().call("PUT", f"/api/mcp-servers/{name}", json=body)
    assert answer.status_code == 422, answer.text
    no_credential_in(answer)
    assert TOKEN not in json.dumps(answer.json())


async def test_a_scope_holds_a_bounded_number_of_servers(api: InApp) -> None:
    admin = api.admin()
    for i in range(20):
        made = await admin.call("PUT", f"/api/mcp-servers/s{i}", json=HTTP)
        assert made.status_code == 200, made.text
    full = await admin.call("PUT", "/api/mcp-servers/s20", json=HTTP)
    assert full.status_code == 409
    assert full.json()["error"]["code"] == "mcp_server_limit_reached"
    again = await admin.call("PUT", "/api/mcp-servers/s3", json={**HTTP, "enabled": False})
    assert again.status_code == 200  # replacing one is no new one


async def test_unknown_repos_and_servers_are_404(api: InApp) -> None:
    admin = api.admin()
    answer = await admin.call("PUT", "/api/mcp-servers/x", params={"repo": "nope"}, json=HTTP)
    assert answer.status_code == 404
    gone = await admin.call("DELETE", "/api/mcp-servers/x")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "mcp_server_not_found"
