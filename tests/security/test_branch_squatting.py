"""A hostile agent cannot create or take over another session's branch: not before the branch
exists, not after it was deleted on the origin (as GitHub does with a merged PR's branch). The
owner's prompts keep pushing to it. Real server, real bwrap boxes, real git through the proxy."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from openinspect.cli.client import Client
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess
from tests.e2e.helpers import client_for, collect, finished

pytestmark = pytest.mark.e2e


def origin_ref(origin: Path, branch: str) -> str | None:
    out = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
        cwd=origin,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or None


def pushes(branches: list[str]) -> dict[str, Any]:
    """A script whose agent tries to push its HEAD to each of ``branches``."""
    command = "; ".join(f"git push origin HEAD:refs/heads/{b} 2>&1; echo exit=$?" for b in branches)
    return {"turns": [{"tool_calls": [{"name": "bash", "args": {"command": command}}]}]}


def edit(old: str, new: str) -> dict[str, Any]:
    call = {"name": "edit", "args": {"path": "calc.py", "old": old, "new": new}}
    return {"turns": [{"tool_calls": [call]}, {"text": "Edited."}]}


async def run(
    client: Client, llm: ScriptedLLMServer, sid: str, script: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run one prompt with ``script``; its events (up to its prompt-finished)."""
    llm.reset(script)
    prompt = await client.post_prompt(sid, content="go")
    events = await collect(client, sid, finished(prompt["id"]), timeout_s=180)
    mine = [e for e in events if e.get("prompt_id") == prompt["id"]]
    assert mine[-1]["status"] == "success", mine[-1]
    return mine


@pytest.mark.timeout(600)  # five prompts, each with its sandbox
async def test_a_session_cannot_create_another_sessions_branch_before_or_after_it_exists(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path
) -> None:
    async with client_for(server) as client:
        victim = (await client.create_session(repo=str(origin)))["session"]
        attacker = (await client.create_session(repo=str(origin)))["session"]
        target = victim["branch"]
        own = f"{attacker['branch']}-notes"

        # Before the victim ever pushed: its name is already its own.
        events = await run(client, llm, attacker["id"], pushes([target, f"{target}-x", own]))
        [output] = [e["output"] for e in events if e["type"] == "tool-result"]
        allowed = (
            f"sessions may push only to {attacker['branch']} "
            f"or to new branches named {attacker['branch']}-<name>"
        )
        assert f"! [remote rejected] HEAD -> {target} ({allowed})" in output
        assert f"! [remote rejected] HEAD -> {target}-x ({allowed})" in output
        assert output.count("exit=1") == 2 and "exit=0" in output, output
        assert origin_ref(origin, target) is None and origin_ref(origin, f"{target}-x") is None
        assert origin_ref(origin, own) is not None  # its own name is fine
        refused = [e for e in events if e["type"] == "warning" and e["code"] == "push_refused"]
        assert len(refused) == 2

        # The victim's prompts push to its branch.
        first = await run(client, llm, victim["id"], edit("return a - b", "return a + b"))
        [push] = [e for e in first if e["type"] == "git-push"]
        assert push["branch"] == target and origin_ref(origin, target) == push["sha"]

        # The PR is merged and the origin deletes the branch: the name stays the victim's.
        subprocess.run(["git", "branch", "-D", target], cwd=origin, check=True, capture_output=True)
        events = await run(client, llm, attacker["id"], pushes([target]))
        [output] = [e["output"] for e in events if e["type"] == "tool-result"]
        assert f"! [remote rejected] HEAD -> {target} ({allowed})" in output
        assert origin_ref(origin, target) is None

        # ...and the victim's next prompt creates it again.
        second = await run(client, llm, victim["id"], edit("return a + b", "return b + a"))
        [again] = [e for e in second if e["type"] == "git-push"]
        assert again["branch"] == target and origin_ref(origin, target) == again["sha"]
        assert again["sha"] != push["sha"]
