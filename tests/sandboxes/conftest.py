"""Fixtures for sandbox tests: a sample repo with a bare origin, a real bridge server on a Unix
socket (Starlette + uvicorn + BridgeHub), providers, and a factory for running sandboxes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from openinspect.runtime.address import unix_url
from openinspect.runtime.protocol import BRIDGE_PATH, MAX_FRAME_BYTES, BindResult
from openinspect.sandboxes.base import SandboxHandle, SandboxProvider, SandboxSpec, SessionBinding
from openinspect.sandboxes.bridge import BridgeHub, SandboxConnection
from openinspect.sandboxes.bwrap import BwrapProvider, probe_bwrap
from openinspect.sandboxes.process import ProcessProvider
from openinspect.settings import Settings
from openinspect.testing.inloop import serving

IN_CI = os.environ.get("CI", "").lower() == "true"
REPO_ROOT = Path(__file__).resolve().parents[2]
UNPRIVILEGED_UID = 65534
SYSTEM_PYTHON = "/usr/bin/python3"
HOST_PATH = "/usr/local/bin:/usr/bin:/bin"
SETUP_SH = """echo "setup running in $OPENINSPECT_BOOT_MODE mode"
echo "$OPENINSPECT_BOOT_MODE" > .setup-ran
"""
START_SH = """echo "start running in $OPENINSPECT_BOOT_MODE mode"
echo "$OPENINSPECT_BOOT_MODE" > .start-ran
"""
FAILING_START_SH = """echo "starting the database"
echo "database refused to start" >&2
exit 7
"""


def as_ordinary_user(
    args: list[str], home: Path, *, path: str = HOST_PATH
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) that run ``python args…`` as :data:`UNPRIVILEGED_UID` from a root
    test run: an ordinary server. The venv's interpreter lives under /root here; the system one,
    with the venv's packages and the sources on the path, is what that uid can run."""
    packages = [p for p in sys.path if p.endswith("site-packages")]
    env = {
        "PATH": path,
        "HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src"), *packages]),
    }
    setpriv = shutil.which("setpriv") or "setpriv"
    uid = f"{UNPRIVILEGED_UID}"
    drop = [f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    return [setpriv, *drop, SYSTEM_PYTHON, *args], env


def git(*args: str, cwd: Path) -> str:
    """Run git without the host's system config (it may carry credential helpers)."""
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


@dataclass
class Origin:
    """A bare origin with ``main`` (setup.sh + start.sh), ``broken`` (start.sh fails) and
    ``openinspect/existing`` (a pushed work branch)."""

    bare: Path
    work: Path


def make_origin(root: Path) -> Origin:
    bare, work = root / "origin.git", root / "work"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=root)
    work.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    (work / "README.md").write_text("# sample\n")
    (work / "src").mkdir()
    (work / "src" / "app.py").write_text("def greet():\n    return 'hello'\n")
    (work / ".openinspect").mkdir()
    (work / ".openinspect" / "setup.sh").write_text(SETUP_SH)
    (work / ".openinspect" / "start.sh").write_text(START_SH)
    (work / ".gitignore").write_text(".setup-ran\n.start-ran\n")
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "sample", cwd=work)
    git("push", "--quiet", str(bare), "main", cwd=work)
    git("checkout", "--quiet", "-b", "openinspect/existing", cwd=work)
    (work / "NOTES.md").write_text("work in progress\n")
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "wip", cwd=work)
    git("push", "--quiet", str(bare), "openinspect/existing", cwd=work)
    git("checkout", "--quiet", "-b", "broken", "main", cwd=work)
    (work / ".openinspect" / "start.sh").write_text(FAILING_START_SH)
    git("commit", "--quiet", "-am", "break start.sh", cwd=work)
    git("push", "--quiet", str(bare), "broken", cwd=work)
    git("checkout", "--quiet", "main", cwd=work)
    return Origin(bare, work)


@pytest.fixture
def repo_origin(tmp_path: Path) -> Origin:
    return make_origin(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@dataclass
class Bridge:
    """A real bridge endpoint: ``sockets`` are the server-side WebSockets, newest last."""

    hub: BridgeHub
    socket_path: Path
    sockets: list[WebSocket] = field(default_factory=list)


@contextlib.asynccontextmanager
async def serve_bridge(hub: BridgeHub) -> AsyncIterator[Bridge]:
    # A short directory: a Unix socket path must fit in 107 bytes, pytest's tmp_path may not.
    socket_dir = Path(tempfile.mkdtemp(prefix="oi-bridge-"))
    bridge = Bridge(hub, socket_dir / "bridge.sock")

    async def route(websocket: WebSocket) -> None:
        bridge.sockets.append(websocket)
        await hub.handle(websocket, websocket.headers)

    app = Starlette(routes=[WebSocketRoute(BRIDGE_PATH, route)])
    config = uvicorn.Config(
        app,
        uds=str(bridge.socket_path),
        ws="websockets-sansio",
        ws_max_size=MAX_FRAME_BYTES,  # as the real server
        log_config=None,
        log_level="warning",
        lifespan="off",
    )
    try:
        async with serving(config):
            try:
                yield bridge
            finally:
                await hub.close()
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)


@pytest.fixture
async def bridge() -> AsyncIterator[Bridge]:
    async with serve_bridge(BridgeHub(heartbeat_timeout_s=30)) as served:
        yield served


@pytest.fixture
def process_provider(settings: Settings) -> ProcessProvider:
    return ProcessProvider.from_settings(settings)


@pytest.fixture
def bwrap_provider(settings: Settings) -> BwrapProvider:
    reason = probe_bwrap()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"bubblewrap is required under CI=true: {reason}")
        pytest.skip(f"bubblewrap cannot create namespaces here: {reason}")
    return BwrapProvider.from_settings(settings)


@dataclass
class Sandbox:
    spec: SandboxSpec
    handle: SandboxHandle
    conn: SandboxConnection
    provider: SandboxProvider
    events: list[dict[str, Any]]
    work_branch: str

    async def bind(self, git_remote_path: str | None = None) -> BindResult:
        """Bind the booted box to its (test) session's work branch."""
        return await self.conn.bind(
            SessionBinding("ses-test", self.work_branch, git_remote_path=git_remote_path)
        )

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]


StartSandbox = Callable[..., Awaitable[Sandbox]]


@pytest.fixture
async def start_sandbox(
    bridge: Bridge, repo_origin: Origin, settings: Settings
) -> AsyncIterator[StartSandbox]:
    """``await start_sandbox(provider, **spec_fields)``: register, create, destroy at teardown.

    ``token=`` overrides the token the runtime gets (the hub keeps the registered one);
    ``work_branch=`` is the branch ``Sandbox.bind`` asks for (carried in the box's clone);
    ``restore_from=`` a snapshot the box is restored from (``provider.restore``).
    """
    started: list[Sandbox] = []

    async def start(provider: SandboxProvider, **overrides: Any) -> Sandbox:
        sandbox_id = overrides.pop("sandbox_id", f"sbx-{uuid.uuid4().hex[:10]}")
        work_branch = overrides.pop("work_branch", f"openinspect/{sandbox_id}")
        restore_from = overrides.pop("restore_from", None)
        token = secrets.token_urlsafe(24)
        conn = bridge.hub.register(sandbox_id, token)
        events: list[dict[str, Any]] = []

        async def on_message(message: Any) -> None:
            events.append(message)

        conn.on_message = on_message
        fields: dict[str, Any] = {
            "sandbox_id": sandbox_id,
            "workspace_dir": settings.workspaces_dir / sandbox_id,
            "clone_source": str(repo_origin.bare),
            "clone_source_is_path": True,
            "base_branch": "main",
            "carry_branches": (work_branch,),
            "token": token,
            "bridge_url": unix_url(str(bridge.socket_path)),
            "boot_mode": "fresh",
            "setup_timeout_s": 30.0,
            "start_timeout_s": 30.0,
            "heartbeat_s": 1.0,
            "max_processes": 1024,
        }
        fields.update(overrides)
        spec = SandboxSpec(**fields)
        if restore_from is not None:
            handle = await provider.restore(restore_from, spec)  # type: ignore[attr-defined]
        else:
            handle = await provider.create(spec)
        sandbox = Sandbox(spec, handle, conn, provider, events, work_branch)
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        await sandbox.provider.destroy(sandbox.handle)


def pids_matching(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker`` (zombies have none)."""
    done = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    return [int(pid) for pid in done.stdout.split()]


async def wait_until_gone(marker: str, timeout_s: float) -> list[int]:
    """Poll until no process matches ``marker``; returns the survivors after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (left := pids_matching(marker)) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return left


def pids_tagged(sandbox_id: str) -> list[int]:
    """Live processes whose environment carries ``OPENINSPECT_SANDBOX_ID=<sandbox_id>``."""
    tag = f"OPENINSPECT_SANDBOX_ID={sandbox_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if tag in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def wait_until_untagged(sandbox_id: str, timeout_s: float) -> list[int]:
    """Poll until no process carries the sandbox's tag; returns the survivors after timeout."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (left := pids_tagged(sandbox_id)) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return left


async def wait_until_running(marker: str, timeout_s: float = 30.0) -> list[int]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (found := pids_matching(marker)):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no process matching {marker!r} started")
        await asyncio.sleep(0.05)
    return found


@pytest.fixture
def marker() -> Iterator[str]:
    """A unique command-line marker; processes still carrying it are killed (by pid) after."""
    value = f"oi-marker-{uuid.uuid4().hex}"
    yield value
    for pid in pids_matching(value):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
