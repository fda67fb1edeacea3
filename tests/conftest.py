"""Shared fixtures: a sample repo with a bare origin, the scripted LLM, and a real server."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.sandboxes.workspace_fs import mount_points
from openinspect.settings import SandboxSettings, SessionSettings, Settings
from openinspect.testing.asgi import InApp
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.repos import make_sample_repo
from openinspect.testing.server import ServerProcess

IN_CI = os.environ.get("CI", "").lower() == "true"
# Values a prompt-injected agent must never see; the tests search the sandbox for them.
SECRET_ANTHROPIC = "sk-ant-test-SECRET-0123456789"
SECRET_COMPAT = "sk-compat-test-SECRET-9876543210"
MODEL = "openai-compatible:scripted"


def skip_or_fail(reason: str) -> None:
    """Skip on a developer machine; under CI a missing service is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return make_sample_repo(root)


@pytest.fixture
def llm() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer({"turns": []}) as server:
        yield server


def server_env(llm: ScriptedLLMServer, **extra: str) -> dict[str, str]:
    return {
        "OPENINSPECT_MODELS__OPENAI_COMPATIBLE_BASE_URL": llm.openai_base_url,
        "OPENINSPECT_MODELS__OPENAI_COMPATIBLE_API_KEY": SECRET_COMPAT,
        "ANTHROPIC_API_KEY": SECRET_ANTHROPIC,
        "OPENINSPECT_AGENT__DEFAULT_MODEL": MODEL,
        "OPENINSPECT_SANDBOX__PROVIDER": "bwrap",
        **extra,
    }


@pytest.fixture
def server(tmp_path: Path, llm: ScriptedLLMServer) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "home", env=server_env(llm)) as proc:
        yield proc


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    """An in-process control plane (process sandboxes, background tidying off, WebSockets
    re-checked every 0.5 s so a revocation shows at once) for engine and API tests; a module
    that needs other settings defines its own ``plane``."""
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0, ws_auth_recheck_s=0.5),
    )
    async with open_control_plane(settings) as opened:
        yield opened


@pytest.fixture
async def api(plane: ControlPlane) -> AsyncIterator[InApp]:
    """The API and its WebSocket on ``plane``, driven in this process (no port, no server):
    ``api.admin()`` and ``await api.member(name)`` are signed-in callers."""
    async with InApp.open(plane) as opened:
        yield opened


@pytest.fixture
async def calc(api: InApp, origin: Path) -> str:
    """``origin`` registered (by the admin) as the repo ``calc``, which members may use."""
    made = await api.admin().call("POST", "/api/repos", json={"name": "calc", "url": str(origin)})
    assert made.status_code == 201, made.text
    return "calc"


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Unmount workspace images that servers killed on purpose (kill -9 tests) left mounted
    under this run's temporary directories, so that pytest can remove them later. A server
    that stops normally, or starts again on the same home, unmounts its own. Under xdist
    only the controller does this, once every worker is done: a worker that finishes first
    must not pull the images out from under the others."""
    if hasattr(session.config, "workerinput"):
        return
    root = str(session.config._tmp_path_factory.getbasetemp().parent)  # type: ignore[attr-defined]
    for point, fstype in mount_points(Path("/proc/self/mountinfo").read_text()):
        if fstype == "ext4" and str(point).startswith(root):
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
