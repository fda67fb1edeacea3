"""What the MCP box tests share: a control plane with real bubblewrap boxes, a repo carrying
the stdio MCP server script, and running one prompt to its end."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import openinspect.testing.mcp_stdio_server as stdio_script
from openinspect.controlplane import ControlPlane
from openinspect.sandboxes.bwrap import probe_bwrap
from openinspect.settings import AgentSettings, ModelProviderSettings, SandboxSettings, Settings
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.conftest import MODEL, skip_or_fail
from tests.sessions.bridged import bridged_plane

TIMEOUT_S = 120.0
CALL_TIMEOUT_S = 4


@pytest.fixture
async def plane(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[ControlPlane]:
    reason = probe_bwrap()
    if reason is not None:
        skip_or_fail(reason)
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="bwrap"),
        agent=AgentSettings(
            default_model=MODEL, mcp_call_timeout_s=CALL_TIMEOUT_S, mcp_connect_timeout_s=15
        ),
        models=ModelProviderSettings(openai_compatible_base_url=llm.openai_base_url),
    )
    async with bridged_plane(settings, git_proxy=True) as opened:
        yield opened


def make_repo(root: Path) -> Path:
    """A bare origin that carries the stdio MCP server script."""
    origin, work = root / "mcp-origin.git", root / "mcp-work"

    def git(*args: str, cwd: Path = root) -> None:
        subprocess.run(
            ["git", *args],
            cwd=cwd,
            check=True,
            capture_output=True,
            env={"GIT_CONFIG_NOSYSTEM": "1"},
        )

    git("init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    work.mkdir()
    (work / "mcp_stdio_server.py").write_text(Path(stdio_script.__file__).read_text())
    (work / "README.md").write_text("# mcp\n")
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    git("add", ".", cwd=work)
    git("-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm", "s", cwd=work)
    git("push", "--quiet", str(origin), "main", cwd=work)
    return origin


async def prompt(plane: ControlPlane, repo: str, text: str) -> list[Any]:
    admin = plane.bootstrap.user
    assert admin is not None
    session = await plane.manager.create(admin, repo=repo)
    await (await plane.manager.actor(session.id)).submit(admin, text)
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            stored = await plane.store.events.after(session.id, 0, 10_000)
            if any(e.type == "prompt-finished" for e in stored):
                return stored
            await asyncio.sleep(0.1)


def results_of(stored: list[Any]) -> dict[str, Any]:
    results = {e.tool: e for e in stored if e.type == "tool-result"}
    said = [(e.type, getattr(e, "message", None)) for e in stored if e.type in ("warning", "error")]
    assert results, said
    return results
