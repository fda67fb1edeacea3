"""``openinspect secrets`` against a real server: a value goes in from standard input or a
file (never the command line), a ``.env`` file is imported whole or not at all, the listing
shows names and scopes, and no command ever prints a value."""

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
TOKEN = "npm-SECRET-0123456789"
KEY = "-----BEGIN KEY-----\nSECRET-key-body-abcdef\n-----END KEY-----\n"
ENV = """\
# exported from the old CI
export DB_URL="postgres://app:SECRET-db-pw@db/app"
STRIPE_KEY='sk_test_SECRET_4242'   # test mode
"""
VALUES = (TOKEN, "SECRET-key-body-abcdef", "SECRET-db-pw", "sk_test_SECRET_4242")


async def stored(home: Path, repo: str | None) -> dict[str, str]:
    """What a box of ``repo`` would get, read from the server's own store."""
    store = await Store.open(
        f"sqlite+aiosqlite:///{home / 'openinspect.db'}", sealer=Sealer.from_settings(None, home)
    )
    try:
        found = await store.repos.find(repo) if repo else None
        return await store.secrets.values_for(found.id if found else None)
    finally:
        await store.close()


def quiet(*outputs: str) -> None:
    for text in outputs:
        for value in VALUES:
            assert value not in text, text


def test_secrets_are_set_imported_listed_and_deleted_without_a_value_shown(
    server: ServerProcess, origin: Path, tmp_path: Path
) -> None:
    added = cli("repos", "add", "sample", str(origin), server=server)
    assert added.returncode == 0, added.stderr

    piped = cli("secrets", "set", "NPM_TOKEN", server=server, stdin_text=TOKEN + "\n")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.strip() == "set NPM_TOKEN (global)"
    key_file = tmp_path / "deploy.key"
    key_file.write_text(KEY)
    from_file = cli(
        "secrets", "set", "DEPLOY_KEY", "--repo", "sample", "--from-file", str(key_file),
        server=server,
    )  # fmt: skip
    assert from_file.returncode == 0, from_file.stderr
    assert "DEPLOY_KEY (repo sample)" in from_file.stdout
    env_file = tmp_path / ".env"
    env_file.write_text(ENV)
    imported = cli("secrets", "import", str(env_file), "--repo", "sample", server=server)
    assert imported.returncode == 0, imported.stderr
    assert "imported 2 (repo sample): DB_URL, STRIPE_KEY" in imported.stdout
    again = cli(
        "secrets",
        "import",
        "-",
        server=server,
        stdin_text="export NPM_TOKEN=npm-SECRET-0123456789\n",
    )
    assert again.returncode == 0, again.stderr

    listed = cli("secrets", "list", "--json", server=server)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["name"], r["scope"], r["repo"]) for r in rows] == [
        ("NPM_TOKEN", "global", None),
        ("DB_URL", "repo", "sample"),
        ("DEPLOY_KEY", "repo", "sample"),
        ("STRIPE_KEY", "repo", "sample"),
    ]
    # Exactly the values: the pipe's line end dropped, the key file's kept.
    assert asyncio.run(stored(server.home, "sample")) == {
        "NPM_TOKEN": TOKEN,
        "DEPLOY_KEY": KEY,
        "DB_URL": "postgres://app:SECRET-db-pw@db/app",
        "STRIPE_KEY": "sk_test_SECRET_4242",
    }
    table = cli("secrets", "list", "--repo", "sample", server=server)
    assert table.returncode == 0 and "DEPLOY_KEY" in table.stdout and "repo sample" in table.stdout

    bad = cli("secrets", "import", "-", server=server, stdin_text="GOOD=SECRET-db-pw\nnot a line\n")
    assert bad.returncode == 2 and "secret_invalid" in bad.stderr and "line 2" in bad.stderr
    reserved = cli("secrets", "set", "PATH", server=server, stdin_text="/SECRET-db-pw/bin")
    assert reserved.returncode == 2 and "used by the box itself" in reserved.stderr

    gone = cli("secrets", "delete", "DEPLOY_KEY", "--repo", "sample", server=server)
    assert gone.returncode == 0 and "deleted DEPLOY_KEY (repo sample)" in gone.stdout
    missing = cli("secrets", "delete", "DEPLOY_KEY", "--repo", "sample", server=server)
    assert missing.returncode == 2 and "secret_not_found" in missing.stderr
    quiet(
        *(r.stdout + r.stderr for r in (piped, from_file, imported, again, listed, table)),
        *(r.stdout + r.stderr for r in (bad, reserved, gone, missing)),
    )
