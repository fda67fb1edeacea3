"""Git failures are visible: a push that the origin or the proxy refuses fails the prompt (with a
stable code and git's reason, no server paths), and a push that landed on the origin just before
the server was killed is in the log after the restart. Real server, real bwrap boxes, real git."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from openinspect.cli.client import Client
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess
from tests.conftest import server_env
from tests.e2e.helpers import client_for, collect, finished

pytestmark = pytest.mark.e2e

FIX = {
    "turns": [
        {
            "tool_calls": [
                {
                    "name": "edit",
                    "args": {"path": "calc.py", "old": "return a - b", "new": "return a + b"},
                }
            ]
        },
        {"text": "Fixed."},
    ]
}
CHAT = {"turns": [{"text": "Nothing to change."}]}
START_TIMEOUT_S = 240.0  # three starts in one test, on a shared and busy machine


def git(origin: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=origin, check=True, capture_output=True, text=True
    ).stdout.strip()


def origin_ref(origin: Path, branch: str) -> str | None:
    out = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
        cwd=origin,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or None


def hook(origin: Path, name: str, body: str) -> Path:
    path = origin / "hooks" / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


async def run(
    client: Client, llm: ScriptedLLMServer, sid: str, script: dict[str, Any]
) -> list[dict[str, Any]]:
    llm.reset(script)
    prompt = await client.post_prompt(sid, content="go")
    events = await collect(client, sid, finished(prompt["id"]), timeout_s=180)
    return [e for e in events if e.get("prompt_id") == prompt["id"]]


def assert_safe(message: str, origin: Path, server: ServerProcess) -> None:
    """No server path, no address of the proxy, short."""
    for secret in (str(origin), str(server.home), "127.0.0.1", "/git/ses_", "http://"):
        assert secret not in message, message
    assert len(message) <= 1500


@pytest.mark.timeout(300)
async def test_a_push_the_origin_rejects_fails_the_prompt(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path
) -> None:
    rejecting = hook(origin, "pre-receive", "echo 'pushes are frozen today' >&2\nexit 1")
    async with client_for(server) as client:
        sid = (await client.create_session(repo=str(origin)))["session"]["id"]
        events = await run(client, llm, sid, FIX)
        end = events[-1]
        assert end["type"] == "prompt-finished"
        assert end["status"] == "error"
        error = end["error"]
        assert error["code"] == "push_failed"
        assert "pushes are frozen today" in error["message"]
        assert "pre-receive hook declined" in error["message"]
        assert error["hint"]
        assert_safe(error["message"], origin, server)
        assert [e["type"] for e in events if e["type"] == "git-commit"] == ["git-commit"]
        assert not [e for e in events if e["type"] == "git-push"]
        listed = await client.request("GET", "/api/sessions")
        last = listed["last_prompts"][sid]
        assert (last["status"], last["error_code"]) == ("error", "push_failed")
        assert "frozen today" in last["error_message"]  # the origin's own reason

        # The commit was kept: once the origin takes pushes again, the next prompt sends it.
        rejecting.unlink()
        later = await run(client, llm, sid, CHAT)
        assert later[-1]["status"] == "success"
        [push] = [e for e in later if e["type"] == "git-push"]
        commit = next(e for e in events if e["type"] == "git-commit")
        assert push["sha"] == commit["sha"] == origin_ref(origin, push["branch"])


@pytest.mark.timeout(300)
async def test_a_push_the_proxy_refuses_fails_the_prompt(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path
) -> None:
    async with client_for(server) as client:
        session = (await client.create_session(repo=str(origin)))["session"]
        # Someone else puts a branch of that name on the origin: the session never takes it over.
        git(origin, "branch", session["branch"], "main")
        events = await run(client, llm, session["id"], FIX)
    end = events[-1]
    assert end["status"] == "error" and end["error"]["code"] == "push_failed"
    assert (
        f"{session['branch']} already exists on the origin and this session did not create it"
        in end["error"]["message"]
    )
    assert_safe(end["error"]["message"], origin, server)
    assert origin_ref(origin, session["branch"]) == origin_ref(origin, "main")


@pytest.mark.timeout(900)
async def test_a_push_that_landed_just_before_kill_9_is_in_the_log_after_recovery(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    home = tmp_path / "home"
    first = ServerProcess(home, env=server_env(llm)).start(START_TIMEOUT_S)
    assert first.proc is not None
    # The origin takes the push, then kills the server before the proxy hears back from it.
    hook(origin, "post-receive", f"kill -9 {first.proc.pid}")
    try:
        async with client_for(first) as client:
            session = (await client.create_session(repo=str(origin)))["session"]
            llm.reset(FIX)
            prompt = await client.post_prompt(session["id"], content="fix add")
        first.proc.wait(120)
    finally:
        first.kill()
    (origin / "hooks" / "post-receive").unlink()
    branch, sid = session["branch"], session["id"]
    tip = origin_ref(origin, branch)
    assert tip is not None, "the origin took the push"

    def recorded(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["type"] == "git-push"]

    second = ServerProcess(home, env=server_env(llm)).start(START_TIMEOUT_S)
    try:
        async with client_for(second) as client:
            events = await collect(client, sid, finished(prompt["id"]), timeout_s=60)
    finally:
        second.stop()
    commit = next(e for e in events if e["type"] == "git-commit")
    assert commit["sha"] == tip
    [push] = recorded(events)
    assert (push["sha"], push["branch"], push["prompt_id"]) == (tip, branch, prompt["id"])
    assert events[-1]["status"] == "interrupted"
    assert events.index(push) < len(events) - 1  # recorded before the prompt's end

    # Recovery runs again on every start and records nothing twice.
    with ServerProcess(home, env=server_env(llm)) as third:
        async with client_for(third) as client:
            page = await client.request("GET", f"/api/sessions/{sid}/events", params={"limit": 500})
    assert [p["sha"] for p in recorded(page["events"])] == [tip]
