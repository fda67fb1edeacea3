"""MCP tools in a real session with a real bubblewrap box: a remote server over streamable
HTTP called by the control plane with its credential (which the box never sees), and a stdio
server that runs inside the box, spoken to over the bridge's ``pipe``."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.secrets.rules import GLOBAL, SecretScope
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.mcp_server import FakeMcpServer, ticket
from tests.sessions.mcp_box import make_repo, plane, prompt, results_of

__all__ = ["plane"]  # the fixture
TOKEN = "mcp-CRED-5e4d3c2b1a09f8e7d6c5"
FRAGMENT = "CRED-5e4d3c2b1a09"
BOX_LOOK = (
    "env; cat /proc/1/environ; echo; "
    # The fragment, spelled so that the command itself does not hold it; and, to show the
    # search works, a string the checkout has (its README's "# mcp").
    'echo "matches: $(grep -rlsF "$(printf %s CRED-5e4d 3c2b1a09)" '
    '/workspace /tmp /home /etc 2>/dev/null | wc -l)"; '
    'echo "control: $(grep -rlsF "$(printf %s "# mc" p)" /workspace 2>/dev/null | wc -l)"'
)
BIG_FILE_BYTES = 256 * 1024 * 1024
"""Host files larger are the boxes' sparse workspace images: the box greps its own files."""


@pytest.fixture
def fake_mcp() -> Iterator[FakeMcpServer]:
    with FakeMcpServer(token=TOKEN) as server:
        yield server


async def test_a_remote_tool_is_called_with_its_credential_that_the_box_never_sees(
    plane: ControlPlane,
    llm: ScriptedLLMServer,
    fake_mcp: FakeMcpServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    store, admin = plane.store, plane.bootstrap.user
    assert admin is not None
    await store.repos.create(
        name="tickets", url=str(make_repo(tmp_path)), default_branch="main", created_by=admin.id
    )
    await store.mcp_servers.put(
        GLOBAL,
        "tracker",
        transport="http",
        url=fake_mcp.url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        by=None,
    )
    llm.reset(
        {
            "turns": [
                {"tool_calls": [{"name": "tracker__lookup_ticket", "args": {"id": "T-42"}}]},
                {"tool_calls": [{"name": "bash", "args": {"command": BOX_LOOK}}]},
                {"tool_calls": [{"name": "tracker__leaky", "args": {}}]},
                {"tool_calls": [{"name": "tracker__big", "args": {"chars": 400_000}}]},
                {"text": "The ticket is open."},
            ]
        }
    )
    stored = await prompt(plane, "tickets", "what is T-42?")
    [finished] = [e for e in stored if e.type == "prompt-finished"]
    assert finished.status == "success", finished

    # The fake checked the credential: the call came with it, and none came without.
    assert [c["tool"] for c in fake_mcp.calls] == ["lookup_ticket", "leaky", "big"]
    assert fake_mcp.calls[0]["args"] == {"id": "T-42"}
    assert fake_mcp.refused == 0
    [call] = [e for e in stored if e.type == "tool-call" and e.tool == "tracker__lookup_ticket"]
    assert call.args == {"id": "T-42"}
    results = results_of(stored)
    assert json.loads(results["tracker__lookup_ticket"].output) == ticket("T-42")
    assert not results["tracker__lookup_ticket"].is_error
    # The result reached the next model request.
    assert ticket("T-42")["title"] in json.dumps(llm.requests[1].body)
    tools = {t["function"]["name"] for t in llm.requests[0].body["tools"]}
    assert {"tracker__lookup_ticket", "tracker__echo", "bash"} <= tools

    # A server that says the credential back has it named instead, for the model too.
    leaky = results["tracker__leaky"].output
    assert leaky.count("[secret:MCP_tracker_Authorization]") == 2, leaky
    # A large result is cut like any tool's, for the event and for the model.
    big = results["tracker__big"]
    assert big.truncated_for_model and "omitted" in big.output and len(big.output) < 300_000
    sent_back = json.dumps(llm.requests[4].body)
    assert "omitted" in sent_back and "x" * 40_000 not in sent_back

    # Nowhere: no event, no model request, no box env (not even redacted: it was never
    # there), no file of the box's workspace, no box log.
    env_out = results["bash"].output
    assert "PATH=" in env_out and "[secret:MCP_" not in env_out
    assert "\nmatches: 0\n" in env_out, env_out[-500:]
    assert "\ncontrol: 0\n" not in env_out and "\ncontrol: " in env_out
    everything = {
        "events": json.dumps([e.model_dump(mode="json") for e in stored]),
        "model requests": json.dumps([r.body for r in llm.requests]),
        "env": env_out,
        "server log": caplog.text,
    }
    assert [where for where, text in everything.items() if FRAGMENT in text] == []
    assert _files_holding(plane.settings.workspaces_dir, FRAGMENT.encode()) == []


def _files_holding(root: Path, needle: bytes) -> list[str]:
    """The files under ``root`` (the boxes' workspaces and logs, on the host) holding
    ``needle``, read one at a time, links not followed."""
    found = []
    for folder, _, files in os.walk(root, followlinks=False):
        for name in files:
            path = Path(folder, name)
            if path.is_symlink() or not path.is_file() or path.stat().st_size > BIG_FILE_BYTES:
                continue
            with path.open("rb") as handle:
                tail = b""
                while chunk := handle.read(1 << 20):
                    if needle in tail + chunk:
                        found.append(str(path))
                        break
                    tail = chunk[-len(needle) :]
    return found


async def test_a_stdio_server_runs_inside_the_box(
    plane: ControlPlane, llm: ScriptedLLMServer, tmp_path: Path
) -> None:
    store, admin = plane.store, plane.bootstrap.user
    assert admin is not None
    repo = await store.repos.create(
        name="boxed", url=str(make_repo(tmp_path)), default_branch="main", created_by=admin.id
    )
    await store.mcp_servers.put(
        SecretScope(repo.id),
        "boxy",
        transport="stdio",
        command=["python3", "mcp_stdio_server.py"],
        by=None,
    )
    llm.reset(
        {
            "turns": [
                {"tool_calls": [{"name": "boxy__whoami", "args": {}}]},
                {"tool_calls": [{"name": "boxy__add", "args": {"a": 2, "b": 40}}]},
                {"text": "done"},
            ]
        }
    )
    stored = await prompt(plane, "boxed", "where do you run?")
    [finished] = [e for e in stored if e.type == "prompt-finished"]
    assert finished.status == "success", finished
    results = results_of(stored)
    assert results["boxy__add"].output == "42"
    whoami = json.loads(results["boxy__whoami"].output)
    # It ran in the box's checkout (the box's own paths, not the host's workspace).
    assert whoami["cwd"] == "/workspace/repo"
    # The box's normal environment: nothing of an MCP server's.
    assert "PATH" in whoami["env_names"].split()
    assert [n for n in whoami["env_names"].split() if "MCP" in n] == []
    tools = {t["function"]["name"] for t in llm.requests[0].body["tools"]}
    assert {"boxy__whoami", "boxy__add"} <= tools
