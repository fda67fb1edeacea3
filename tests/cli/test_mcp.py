"""``openinspect mcp`` against a real server: a remote server's credential goes in from
standard input or a file (never the command line) and no command prints it; a stdio server's
command comes after ``--``; the listing shows names, scopes and header names."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from openinspect.store import Store
from openinspect.store.crypto import Sealer
from openinspect.testing.server import ServerProcess
from tests.cli.helpers import cli

pytestmark = pytest.mark.e2e
TOKEN = "Bearer mcp-CRED-cli-0123456789"


async def opened(home: Path, repo: str | None) -> dict[str, dict[str, str]]:
    """Each server's headers as a prompt on ``repo`` would get them, from the server's store."""
    store = await Store.open(
        f"sqlite+aiosqlite:///{home / 'openinspect.db'}", sealer=Sealer.from_settings(None, home)
    )
    try:
        found = await store.repos.find(repo) if repo else None
        servers = await store.mcp_servers.for_repo(found.id if found else None)
        return {s.name: dict(s.headers) for s in servers}
    finally:
        await store.close()


def test_servers_are_added_listed_and_removed_without_a_credential_shown(
    server: ServerProcess, origin: Path, tmp_path: Path
) -> None:
    assert cli("repos", "add", "sample", str(origin), server=server).returncode == 0
    piped = cli(
        "mcp", "add", "tracker", "--url", "https://tools.example.com/mcp",
        "--credential-header", "Authorization",
        server=server, stdin_text=TOKEN + "\n",
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.strip() == "added tracker (global)"
    cred = tmp_path / "cred"
    cred.write_text(TOKEN)
    from_file = cli(
        "mcp", "add", "docs", "--repo", "sample", "--url", "http://127.0.0.1:1/mcp",
        "--credential-header", "X-Api-Key", "--credential-file", str(cred), "--tool", "search",
        server=server,
    )  # fmt: skip
    assert from_file.returncode == 0, from_file.stderr
    stdio = cli(
        "mcp", "add", "boxy", "--repo", "sample", "--", "python3", "server.py", "--quiet",
        server=server,
    )  # fmt: skip
    assert stdio.returncode == 0, stdio.stderr

    listed = cli("mcp", "list", "--json", server=server)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["name"], r["scope"], r["transport"]) for r in rows] == [
        ("tracker", "global", "http"),
        ("boxy", "repo", "stdio"),
        ("docs", "repo", "http"),
    ]
    assert rows[1]["command"] == ["python3", "server.py", "--quiet"]
    assert rows[2]["header_names"] == ["X-Api-Key"] and rows[2]["tools"] == ["search"]
    assert asyncio.run(opened(server.home, "sample")) == {
        "boxy": {},
        "docs": {"X-Api-Key": TOKEN},
        "tracker": {"Authorization": TOKEN},
    }
    table = cli("mcp", "list", "--repo", "sample", server=server)
    assert table.returncode == 0 and "X-Api-Key" in table.stdout

    both = cli("mcp", "add", "x", "--url", "https://a.example/mcp", "--", "python3", server=server)
    assert both.returncode == 2 and "either --url" in both.stderr
    bad = cli("mcp", "add", "x", "--url", "file:///etc/passwd", server=server)
    assert bad.returncode == 2 and "mcp_server_invalid" in bad.stderr

    gone = cli("mcp", "remove", "docs", "--repo", "sample", server=server)
    assert gone.returncode == 0 and "removed docs (repo sample)" in gone.stdout
    missing = cli("mcp", "remove", "docs", "--repo", "sample", server=server)
    assert missing.returncode == 2 and "mcp_server_not_found" in missing.stderr
    for result in (piped, from_file, stdio, listed, table, both, bad, gone, missing):
        assert "CRED-cli" not in result.stdout + result.stderr
