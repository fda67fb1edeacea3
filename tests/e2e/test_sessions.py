"""End to end: a real server process, real bwrap sandboxes, real git, the scripted LLM over HTTP."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess
from tests.conftest import SECRET_ANTHROPIC, SECRET_COMPAT, server_env
from tests.e2e.helpers import client_for, collect, finished, start_session

pytestmark = pytest.mark.e2e


def git(origin: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=origin, check=True, capture_output=True, text=True
    ).stdout


def fix_script() -> dict[str, object]:
    return {
        "turns": [
            {
                "text": "Running the tests.",
                "tool_calls": [
                    {"name": "bash", "args": {"command": "python3 -m unittest -q 2>&1; echo done"}}
                ],
            },
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


async def test_prompt_runs_tools_commits_and_pushes(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(fix_script())
    async with client_for(server) as client:
        me = await client.request("GET", "/api/me")
        sid, pid = await start_session(client, str(origin), "Fix add()")
        events = await collect(client, sid, finished(pid))
    types = [e["type"] for e in events]
    assert types[0] == "session-created"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    calls = [e for e in events if e["type"] == "tool-call"]
    results = [e for e in events if e["type"] == "tool-result"]
    assert [c["tool"] for c in calls] == ["bash", "edit"]
    assert [r["call_id"] for r in results] == [c["call_id"] for c in calls]
    assert "FAILED" in results[0]["output"] and results[0]["exit_code"] == 0
    commit = next(e for e in events if e["type"] == "git-commit")
    push = next(e for e in events if e["type"] == "git-push")
    assert events[-1]["status"] == "success"
    assert types.index("git-push") < types.index("prompt-finished")
    branch = commit["branch"]
    assert branch == f"openinspect/{sid.split('_', 1)[1][:8]}" == push["branch"]
    # The branch is on the origin, authored by the prompting user, committed by openinspect.
    log = git(origin, "log", "-1", "--format=%H|%an|%ae|%cn", branch).strip().split("|")
    assert log == [commit["sha"], me["git_name"], me["git_email"], "openinspect"]
    assert "return a + b" in git(origin, "show", f"{branch}:calc.py")
    assert "return a - b" in git(origin, "show", "main:calc.py")


async def test_clients_see_identical_sequences_join_late_and_resume(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(
        {
            "turns": [
                {"text": "one", "tool_calls": [{"name": "bash", "args": {"command": "seq 1 50"}}]},
                {"text": "two", "tool_calls": [{"name": "glob", "args": {"pattern": "*.py"}}]},
                {"text": "done"},
            ]
        }
    )
    async with client_for(server) as client:
        created = await client.create_session(repo=str(origin))
        sid = created["session"]["id"]

        def idle(e: dict[str, object]) -> bool:
            return e["type"] == "session-updated" and e.get("status") == "idle"

        first = asyncio.create_task(collect(client, sid, idle))
        second = asyncio.create_task(collect(client, sid, idle))
        await asyncio.sleep(0.5)
        await client.post_prompt(sid, content="go")
        a, b = await first, await second
        assert a == b
        assert [e["seq"] for e in a] == list(range(1, len(a) + 1))
        # A late joiner gets the same history by replay...
        late = await collect(client, sid, idle)
        assert late == a
        # ...and by paging the REST API in small pages.
        paged: list[dict[str, object]] = []
        before: int | None = None
        while True:
            params = {"limit": 3} | ({"before_seq": before} if before else {})
            page = await client.request("GET", f"/api/sessions/{sid}/events", params=params)
            paged = page["events"] + paged
            if not page["has_more"]:
                break
            before = page["events"][0]["seq"]
        assert paged == a
        # Resuming from the middle sees exactly the rest: no gap, no duplicate.
        middle = a[len(a) // 2]["seq"]
        rest = await collect(client, sid, idle, since_seq=middle)
        assert rest == [e for e in a if e["seq"] > middle]


async def test_follow_up_continues_the_conversation(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(
        {
            "turns": [
                {"text": "Looking.", "tool_calls": [{"name": "read", "args": {"path": "calc.py"}}]},
                {"text": "The first answer mentions zebra-42."},
                {"text": "Second answer."},
            ]
        }
    )
    async with client_for(server) as client:
        sid, pid = await start_session(client, str(origin), "first question")
        await collect(client, sid, finished(pid))
        second = await client.post_prompt(sid, content="second question", effort="high")
        events = await collect(client, sid, finished(second["id"]))
    assert events[-1]["status"] == "success"
    last = llm.requests[-1].body
    text = json.dumps(last["messages"])
    for earlier in ("first question", "zebra-42", "def add", "second question"):
        assert earlier in text
    assert last["reasoning_effort"] == "high"
    assert "reasoning_effort" not in llm.requests[0].body  # the session default: none


async def test_queue_limits_idempotency_and_cancel(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset({"turns": [{"tool_calls": [{"name": "bash", "args": {"command": "sleep 3"}}]}]})
    async with client_for(server) as client:
        sid = (await client.create_session(repo=str(origin)))["session"]["id"]
        url = f"{server.url}/api/sessions/{sid}/prompts"
        headers = {"Authorization": f"Bearer {server.token}"}
        async with httpx.AsyncClient(headers=headers, timeout=30) as http:
            too_big = await http.post(url, json={"content": "x" * 64_001})
            assert too_big.status_code == 413
            assert too_big.json()["error"]["code"] == "prompt_too_large"
            first = await http.post(url, json={"content": "a", "client_request_id": "req-1"})
            again = await http.post(url, json={"content": "a", "client_request_id": "req-1"})
            assert first.json()["id"] == again.json()["id"]
            conflict = await http.post(url, json={"content": "b", "client_request_id": "req-1"})
            assert conflict.status_code == 409
            assert conflict.json()["error"]["code"] == "prompt_request_conflict"
            queued = [await http.post(url, json={"content": f"p{i}"}) for i in range(9)]
            assert all(r.status_code == 202 for r in queued)
            full = await http.post(url, json={"content": "one too many"})
            assert full.status_code == 429
            assert full.json()["error"] == {
                "code": "prompt_queue_full",
                "message": full.json()["error"]["message"],
                "hint": full.json()["error"]["hint"],
            }
            victim = queued[-1].json()["id"]
            cancelled = await http.post(f"{url}/{victim}/cancel")
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
            again_cancel = await http.post(f"{url}/{victim}/cancel")
            assert again_cancel.json()["error"]["code"] == "prompt_not_cancellable"
            await http.post(f"{server.url}/api/sessions/{sid}/stop")
        events = await client.request("GET", f"/api/sessions/{sid}/events", params={"limit": 500})
    queued_ids = [e["prompt_id"] for e in events["events"] if e["type"] == "prompt-queued"]
    assert queued_ids.count(first.json()["id"]) == 1  # req-1 ran once
    assert any(
        e["type"] == "prompt-cancelled" and e["prompt_id"] == victim for e in events["events"]
    )


_STARTED = time.monotonic()


def _sleepers() -> list[str]:
    """`sleep 600` processes started during this test run (older ones belong to someone else)."""
    max_age_s = int(time.monotonic() - _STARTED) + 1
    out = subprocess.run(["ps", "-eo", "etimes=,stat=,args="], capture_output=True, text=True)
    found = []
    for line in out.stdout.splitlines():
        age, stat, args = line.split(None, 2)
        if args.strip() == "sleep 600" and int(age) <= max_age_s and not stat.startswith("Z"):
            found.append(line)
    return found


async def test_stop_ends_a_long_command_within_seconds(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset({"turns": [{"tool_calls": [{"name": "bash", "args": {"command": "sleep 600"}}]}]})
    async with client_for(server) as client:
        sid, pid = await start_session(client, str(origin), "wait a long time")
        await collect(client, sid, lambda e: e["type"] == "tool-call")
        # The tool call is announced before the sandbox has booted: give the command a moment.
        deadline = time.monotonic() + 10
        while not _sleepers() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert _sleepers(), "the command should be running"
        started = time.monotonic()
        assert (await client.request("POST", f"/api/sessions/{sid}/stop"))["stopped"]
        events = await collect(client, sid, finished(pid))
        elapsed = time.monotonic() - started
    assert events[-1]["status"] == "stopped"
    assert elapsed < 5
    assert _sleepers() == []


async def test_kill_9_then_restart_keeps_history_and_marks_interrupted(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(
        {
            "turns": [
                {
                    "text": "Waiting.",
                    "tool_calls": [{"name": "bash", "args": {"command": "sleep 600"}}],
                },
                {"text": "After restart."},
            ]
        }
    )
    home = tmp_path / "home"
    first = ServerProcess(home, env=server_env(llm)).start()
    try:
        async with client_for(first) as client:
            sid, pid = await start_session(client, str(origin), "long job")
            before = await collect(client, sid, lambda e: e["type"] == "tool-call")
    finally:
        first.kill()
    deadline = time.monotonic() + 10
    while _sleepers() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert _sleepers() == [], "sandbox processes must die with the server"
    with ServerProcess(home, env=server_env(llm)) as second:
        async with client_for(second) as client:
            history = await collect(client, sid, finished(pid))
            assert history[: len(before)] == before
            assert history[-1]["status"] == "interrupted"
            prompt = (await client.request("GET", f"/api/sessions/{sid}"))["queue"]
            assert prompt == []
            nxt = await client.post_prompt(sid, content="carry on")
            after = await collect(client, sid, finished(nxt["id"]), since_seq=history[-1]["seq"])
    assert after[-1]["status"] == "success"
    assert any(e["type"] == "agent-text" and e["text"] == "After restart." for e in after)


async def test_sandbox_cannot_reach_secrets_host_files_or_host_ports(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path
) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    probes = [
        f"cat {server.home}/openinspect.db | head -c 100; echo rc=$?",
        f"cat {server.home}/admin.token; echo rc=$?",
        f"ls {server.home} /root 2>&1; echo rc=$?",
        "env",
        f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\" "
        "2>&1 | tail -1",
        "python3 -c \"import socket; socket.create_connection(('127.0.0.1', 5432), 2)\" "
        "2>&1 | tail -1",
    ]
    llm.reset(
        {
            "turns": [
                {"tool_calls": [{"name": "bash", "args": {"command": c}} for c in probes]},
                {"text": "done"},
            ]
        }
    )
    async with client_for(server) as client:
        sid, pid = await start_session(client, str(origin), "probe")
        events = await collect(client, sid, finished(pid))
    # The model asked for all probes at once; they may finish in any order.
    command = {e["call_id"]: e["args"]["command"] for e in events if e["type"] == "tool-call"}
    by_command = {command[e["call_id"]]: e["output"] for e in events if e["type"] == "tool-result"}
    outputs = [by_command[c] for c in probes]
    everything = "\n".join(outputs)
    assert "SQLite format" not in everything
    assert server.token not in everything
    assert "No such file or directory" in outputs[0] and "No such file" in outputs[1]
    assert SECRET_ANTHROPIC not in everything and SECRET_COMPAT not in everything
    assert "ANTHROPIC_API_KEY" not in outputs[3] and "OPENINSPECT_SANDBOX_TOKEN" not in outputs[3]
    for refused in outputs[4:]:
        assert "Error" in refused  # ConnectionRefusedError / OSError: no route


async def test_first_model_request_does_not_wait_for_the_sandbox(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    work = tmp_path / "slow"
    subprocess.run(["git", "clone", "-q", str(origin), str(work)], check=True)
    (work / ".openinspect" / "start.sh").write_text("#!/bin/sh\nsleep 3\necho started\n")
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "slow"],
        cwd=work,
        check=True,
    )
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=work, check=True)
    llm.reset(
        {
            "turns": [
                {"tool_calls": [{"name": "bash", "args": {"command": "echo hi"}}]},
                {"text": "ok"},
            ]
        }
    )
    with ServerProcess(tmp_path / "home2", env=server_env(llm)) as server:
        async with client_for(server) as client:
            sid = (await client.create_session(repo=str(origin)))["session"]["id"]
            sent = time.time()
            pid = (await client.post_prompt(sid, content="hello"))["id"]
            first = (await llm.wait_for_requests_async(1, timeout_s=10))[0]
            events = await collect(client, sid, finished(pid))
    ready = next(e for e in events if e["type"] == "sandbox-status" and e["status"] == "ready")
    # An ordering, not a speed: the model was asked while start.sh (3 s) still held the box back.
    assert first.received_at < datetime.fromisoformat(ready["ts"]).timestamp()
    assert first.received_at - sent < 3.0
    result = next(e for e in events if e["type"] == "tool-result")
    assert ready["seq"] < result["seq"]
    assert result["output"].startswith("hi")
    assert events[-1]["status"] == "success"
