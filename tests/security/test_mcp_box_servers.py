"""In-box (stdio) MCP servers are not trusted: one that floods, speaks garbage or never
answers is cut off with a clear error the agent reads, and the prompt goes on to its end in
bounded time; a remote server that is not there is a warning, not a failure. Real bubblewrap
boxes, the real runtime and bridge."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from openinspect.controlplane import ControlPlane
from openinspect.secrets.rules import GLOBAL, SecretScope
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.sessions.mcp_box import CALL_TIMEOUT_S, make_repo, plane, prompt, results_of

__all__ = ["plane"]  # the fixture


async def test_hostile_stdio_servers_are_cut_off_and_the_prompt_goes_on(
    plane: ControlPlane, llm: ScriptedLLMServer, tmp_path: Path
) -> None:
    store, admin = plane.store, plane.bootstrap.user
    assert admin is not None
    repo = await store.repos.create(
        name="hostile", url=str(make_repo(tmp_path)), default_branch="main", created_by=admin.id
    )
    for mode in ("flood", "garbage", "mute"):
        await store.mcp_servers.put(
            SecretScope(repo.id),
            mode,
            transport="stdio",
            command=["python3", "mcp_stdio_server.py", mode],
            by=None,
        )
    await store.mcp_servers.put(
        GLOBAL, "gone", transport="http", url="http://127.0.0.1:9/mcp", by=None
    )
    llm.reset(
        {
            "turns": [
                {
                    "tool_calls": [
                        {"name": "flood__add", "args": {"a": 1, "b": 1}},
                        {"name": "garbage__add", "args": {"a": 1, "b": 1}},
                        {"name": "mute__add", "args": {"a": 1, "b": 1}},
                    ]
                },
                {"text": "they failed"},
            ]
        }
    )
    loop = asyncio.get_running_loop()
    began = loop.time()
    stored = await prompt(plane, "hostile", "use them")
    assert loop.time() - began < 60
    [finished] = [e for e in stored if e.type == "prompt-finished"]
    assert finished.status == "success", finished
    results = results_of(stored)
    assert results["flood__add"].is_error
    assert "over 1,000,000 characters" in results["flood__add"].output
    assert results["garbage__add"].is_error
    assert "not a JSON-RPC message" in results["garbage__add"].output
    assert results["mute__add"].is_error
    assert f"no answer within {CALL_TIMEOUT_S} s" in results["mute__add"].output
    [warning] = [e for e in stored if e.type == "warning" and e.code == "mcp_server_unavailable"]
    assert "gone" in warning.message
    # The model heard of each failure and went on.
    assert "mcp_call_failed" in json.dumps(llm.requests[1].body)
