"""``openinspect login`` (GitHub's device flow through a real server), ``tokens`` and ``logout``,
with the fake GitHub."""

from __future__ import annotations

import json
import os
import re
import selectors
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openinspect.cli.credentials import CREDENTIALS_FILE
from openinspect.testing.github import FakeGitHub
from openinspect.testing.server import ServerProcess

pytestmark = pytest.mark.e2e
USER_CODE = re.compile(r"enter the code\s+([A-Z0-9]{4}-[A-Z0-9]{4})")


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:
        gh.add_user("ada")
        gh.set_device_flow(interval_s=0)
        yield gh


@pytest.fixture
def server(tmp_path: Path, fake: FakeGitHub) -> Iterator[ServerProcess]:
    env = {
        "OPENINSPECT_SANDBOX__PROVIDER": "process",
        "OPENINSPECT_GITHUB__WEB_URL": fake.url,
        "OPENINSPECT_GITHUB__CLIENT_ID": fake.client_id,
        "OPENINSPECT_GITHUB__CLIENT_SECRET": fake.client_secret,
        "OPENINSPECT_AUTH__ALLOWED_USERS": '["ada"]',
    }
    with ServerProcess(tmp_path / "server-home", env=env) as proc:
        yield proc


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENINSPECT_")}
    return env | {"OPENINSPECT_HOME": str(home), "COLUMNS": "200"}


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openinspect", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _device_login(home: Path, url: str, fake: FakeGitHub) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "openinspect", "login", "--url", url],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen = ""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    while (match := USER_CODE.search(seen)) is None:
        assert time.monotonic() < deadline, seen
        assert proc.poll() is None, seen + (proc.stderr.read() if proc.stderr else "")
        if selector.select(timeout=1):
            seen += proc.stdout.readline()
    time.sleep(0.3)  # let it poll while pending at least once
    fake.approve_device(match.group(1), "ada")
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, seen + out, err)


@pytest.mark.timeout(300)  # each CLI run starts a Python process
def test_device_login_tokens_and_logout(
    tmp_path: Path, server: ServerProcess, fake: FakeGitHub
) -> None:
    home = tmp_path / "cli-home"
    done = _device_login(home, server.url, fake)
    assert done.returncode == 0, done.stderr
    assert "Signed in to" in done.stdout and "@ada" in done.stdout
    creds_path = home / CREDENTIALS_FILE
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    creds = json.loads(creds_path.read_text())
    assert creds["current"] == server.url
    token = creds["servers"][server.url]["token"]

    # The CLI finds the server and the token on its own now.
    listed = cli(home, "tokens", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    tokens = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(t["kind"], t["current"]) for t in tokens] == [("cli", True)]

    made = cli(home, "tokens", "create", "ci", "--expires-days", "7", "--json")
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    api_token = created["token"]
    me = httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {api_token}"})
    assert me.status_code == 200
    revoked = cli(home, "tokens", "revoke", created["info"]["id"])
    assert revoked.returncode == 0, revoked.stderr
    gone = httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {api_token}"})
    assert gone.status_code == 401

    # login --token keeps a token made elsewhere (checked first).
    other_home = tmp_path / "other"
    bad = cli(other_home, "login", "--url", server.url, "--token", "oi_nope")
    assert bad.returncode == 2 and "unauthenticated" in bad.stderr
    assert not (other_home / CREDENTIALS_FILE).exists()
    good = cli(other_home, "login", "--url", server.url, "--token", token)
    assert good.returncode == 0, good.stderr

    out = cli(home, "logout")
    assert out.returncode == 0, out.stderr
    assert json.loads(creds_path.read_text())["servers"] == {}
    after = httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {token}"})
    assert after.status_code == 401  # revoked on the server, not only forgotten


@pytest.mark.timeout(300)
def test_login_against_a_server_without_github(tmp_path: Path) -> None:
    with ServerProcess(
        tmp_path / "plain", env={"OPENINSPECT_SANDBOX__PROVIDER": "process"}
    ) as plain:
        answer = cli(tmp_path / "cli", "login", "--url", plain.url)
    assert answer.returncode == 2
    assert "not_configured" in answer.stderr
    assert "OPENINSPECT_GITHUB__CLIENT_ID" in answer.stderr
