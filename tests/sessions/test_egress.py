"""A real bwrap box reaches the network only through the egress proxy: its ``setup.sh`` installs
a package from a local index its repo allow-lists, a host nobody allowed is refused with its
name and how to allow it, and every request is recorded."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.models import Session
from openinspect.sandboxes.bwrap import probe_bwrap
from openinspect.settings import EgressSettings, SandboxSettings, Settings
from openinspect.testing.package_index import PackageIndex
from tests.conftest import skip_or_fail
from tests.egress.records import settled
from tests.sessions.bridged import bridged_plane

READY_TIMEOUT_S = 120
SETUP_SH = """set -e
# The index listens on the server's loopback, not the box's: NO_PROXY (which keeps the box's own
# 127.0.0.1 direct, where the git forwarder is) is cleared for this one command.
NO_PROXY= no_proxy= python3 -m pip install --quiet --no-cache-dir --disable-pip-version-check \\
    --target .deps --index-url "{index}/simple/" eggtest
PYTHONPATH=.deps python3 -c "import eggtest; print('installed', eggtest.VALUE)"
curl -sS http://evil.example/ || true
curl -sS -o /dev/null https://evil.example/ 2>&1 || true
python3 - <<'EOF'
import urllib.error, urllib.request
try:
    urllib.request.urlopen("https://evil.example/", timeout=20)
except urllib.error.URLError as exc:
    print("urllib:", exc.reason)
EOF
"""


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def _origin_with_setup(root: Path, setup: str) -> Path:
    origin, work = root / "eggs.git", root / "eggs"
    _git("init", "-q", "--bare", "--initial-branch=main", str(origin), cwd=root)
    (work / ".openinspect").mkdir(parents=True)
    (work / ".openinspect" / "setup.sh").write_text(setup)
    (work / ".gitignore").write_text(".deps/\n")
    _git("init", "-q", "--initial-branch=main", cwd=work)
    _git("add", ".", cwd=work)
    _git("commit", "-qm", "eggs", cwd=work)
    _git("push", "-q", str(origin), "main", cwd=work)
    return origin


@pytest.fixture
def index() -> AsyncIterator[PackageIndex]:
    with PackageIndex({"eggtest": 42}) as served:
        yield served  # type: ignore[misc]


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    reason = probe_bwrap()
    if reason is not None:
        skip_or_fail(f"bubblewrap cannot create namespaces here: {reason}")
    settings = Settings(
        home=tmp_path / "home",
        # The server's own list stays the default (registries): the index comes from the repo's.
        sandbox=SandboxSettings(provider="bwrap", egress=EgressSettings()),
    )
    async with bridged_plane(settings, git_proxy=True) as opened:
        yield opened


async def _session(plane: ControlPlane, origin: Path, allow: list[str]) -> Session:
    user = plane.bootstrap.user
    assert user is not None
    repo = await plane.store.repos.create(
        name="acme/eggs", url=str(origin), default_branch="main", created_by=user.id
    )
    await plane.store.egress.set_repo_entries(repo.id, allow, updated_by=user.id)
    return await plane.manager.create(user, repo=repo.name)


async def test_setup_installs_from_an_allowed_index_and_a_refusal_names_the_host(
    plane: ControlPlane, index: PackageIndex, tmp_path: Path
) -> None:
    origin = _origin_with_setup(tmp_path, SETUP_SH.format(index=index.url))
    session = await _session(plane, origin, [f"127.0.0.1:{index.port}"])
    sandbox = (await plane.manager.actor(session.id)).sandbox
    conn = await asyncio.wait_for(sandbox.ready(), READY_TIMEOUT_S)

    events = await plane.store.events.after(session.id, 0, 10_000)
    setup = [e.line for e in events if e.type == "sandbox-log" and e.source == "setup"]
    assert "installed 42" in setup, setup
    assert any("/files/eggtest-1.0-py3-none-any.whl" in p for p in index.requests)
    refusal = next(line for line in setup if "evil.example" in line and "egress:" in line)
    assert 'host "evil.example" is not allowed' in refusal
    assert "sandbox.egress.allow" in refusal
    assert "openinspect repos egress acme/eggs --allow evil.example" in refusal
    # CONNECT clients show only the status line: it names the host too.
    assert any(
        "403 Forbidden by the egress allow-list: evil.example:443" in line for line in setup
    ), setup
    assert any("CONNECT tunnel failed, response 403" in line for line in setup), setup

    records = await settled(plane, session.id)
    allowed = [r for r in records if r.allowed]
    assert allowed and {(r.host, r.port, r.method) for r in allowed} == {
        ("127.0.0.1", index.port, "GET")
    }
    assert all(r.bytes_down > 0 and r.duration_ms is not None for r in allowed)
    refused = sorted((r.method, r.host, r.port, r.code, r.status) for r in records if not r.allowed)
    assert refused == [
        ("CONNECT", "evil.example", 443, "host_not_allowed", 403),
        ("CONNECT", "evil.example", 443, "host_not_allowed", 403),
        ("GET", "evil.example", 80, "host_not_allowed", 403),
    ]
    warnings = [e for e in events if e.type == "warning" and e.code == "egress_refused"]
    assert len(warnings) == 1 and "evil.example" in warnings[0].message  # once a box and host

    # git still reaches the git proxy directly (NO_PROXY keeps the box's loopback direct).
    fetched = await conn.exec("git ls-remote origin main", timeout_s=60)
    assert fetched.exit_code == 0, fetched.stdout + fetched.stderr
    env = await conn.exec("env | grep -i _proxy= | sort", timeout_s=10)
    assert "HTTPS_PROXY=http://127.0.0.1:" in env.stdout
    assert "npm_config_https_proxy=http://127.0.0.1:" in env.stdout
    assert "NO_PROXY=127.0.0.1,localhost,::1" in env.stdout


async def test_without_the_repos_entry_the_index_is_refused(
    plane: ControlPlane, index: PackageIndex, tmp_path: Path
) -> None:
    """The same box and index, but the repo allows nothing of its own: pip gets 403s."""
    origin = _origin_with_setup(tmp_path, SETUP_SH.format(index=index.url))
    session = await _session(plane, origin, [])
    sandbox = (await plane.manager.actor(session.id)).sandbox
    await asyncio.wait_for(sandbox.ready(), READY_TIMEOUT_S)

    records = await plane.store.egress.of_session(session.id)
    assert records and not any(r.allowed for r in records)
    assert ("GET", "127.0.0.1", index.port, "host_not_allowed") in {
        (r.method, r.host, r.port, r.code) for r in records
    }
    assert index.requests == []
    events = await plane.store.events.after(session.id, 0, 10_000)
    assert any(e.type == "warning" and e.code == "sandbox_setup_failed" for e in events), (
        "setup.sh (set -e) fails when pip cannot install"
    )


async def test_with_egress_off_a_box_has_no_proxy_and_no_network(tmp_path: Path) -> None:
    reason = probe_bwrap()
    if reason is not None:
        skip_or_fail(f"bubblewrap cannot create namespaces here: {reason}")
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="bwrap", egress=EgressSettings(enabled=False)),
    )
    with PackageIndex({"eggtest": 1}) as index:
        async with bridged_plane(settings) as plane:
            assert plane.egress is None
            origin = _origin_with_setup(tmp_path, "true\n")
            session = await _session(plane, origin, [f"127.0.0.1:{index.port}"])
            sandbox = (await plane.manager.actor(session.id)).sandbox
            conn = await asyncio.wait_for(sandbox.ready(), READY_TIMEOUT_S)
            env = await conn.exec("env | grep -ci proxy || true", timeout_s=10)
            assert env.stdout.strip() == "0"
            fetched = await conn.exec(f"curl -sS -m 5 {index.url}/simple/", timeout_s=30)
            assert fetched.exit_code != 0  # the box's own loopback: nothing listens there
            assert index.requests == []
            assert await plane.store.egress.of_session(session.id) == []
