"""The CLI against a real server: run, sessions, --json, doctor, and the offline demo."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess
from tests.cli.helpers import cli

pytestmark = pytest.mark.e2e


def test_run_streams_json_events_and_exits_with_the_prompt(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(
        {
            "turns": [
                {"text": "Listing.", "tool_calls": [{"name": "bash", "args": {"command": "ls"}}]},
                {"text": "All done."},
            ]
        }
    )
    done = cli("run", "list the files", "--repo", str(origin), "--json", server=server)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    for event in events:
        assert {"session_id", "seq", "type", "ts"} <= set(event)
    types = [e["type"] for e in events]
    assert types[0] == "session-created" and types[-1] == "prompt-finished"
    assert "tool-result" in types and "agent-text" in types
    sid = events[0]["session_id"]

    listed = cli("sessions", "list", "--json", server=server)
    assert sid in [json.loads(line)["id"] for line in listed.stdout.splitlines()]
    shown = cli("sessions", "show", sid, "--json", server=server)
    shown_lines = [json.loads(line) for line in shown.stdout.splitlines()]
    assert shown_lines[0]["id"] == sid
    # The CLI says it is the CLI; the session shows where it was started from.
    assert shown_lines[0]["origin"] == "cli"
    assert [json.loads(line)["origin"] for line in listed.stdout.splitlines()] == ["cli"]
    assert "started from cli" in cli("sessions", "show", sid, server=server).stdout
    row = next(
        line
        for line in cli(
            "sessions", "list", server=server, env={"COLUMNS": "250"}
        ).stdout.splitlines()
        if sid in line
    )
    assert " cli " in row
    assert [e["seq"] for e in shown_lines[1:]][: len(events)] == [e["seq"] for e in events]

    llm.reset({"turns": [{"text": "Follow-up answered."}]})
    follow = cli("sessions", "prompt", sid, "and now?", "--json", server=server)
    assert follow.returncode == 0, follow.stderr
    texts = [json.loads(line) for line in follow.stdout.splitlines()]
    assert any(e["type"] == "agent-text" and e["text"] == "Follow-up answered." for e in texts)
    stopped = cli("sessions", "stop", sid, "--json", server=server)
    assert json.loads(stopped.stdout) == {"stopped": False}


def test_failed_prompt_exits_non_zero_and_bad_input_has_a_hint(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path, tmp_path: Path
) -> None:
    bad = cli("run", "x", "--repo", str(tmp_path / "nope"), server=server)
    assert bad.returncode == 2
    assert "invalid_input" in bad.stderr and "hint" in bad.stderr
    effort = cli("run", "x", "--repo", str(origin), "--effort", "ludicrous", server=server)
    assert effort.returncode == 2 and "invalid_effort" in effort.stderr


def test_doctor_reports_each_check(tmp_path: Path) -> None:
    done = cli("doctor", "--json", env={"OPENINSPECT_HOME": str(tmp_path)})
    checks = {json.loads(line)["name"]: json.loads(line) for line in done.stdout.splitlines()}
    assert {"git", "bubblewrap", "sandbox python", "database", "models"} <= set(checks)
    assert checks["git"]["ok"] and checks["database"]["ok"]
    assert checks["models"]["fix"]  # no key configured here: the fix is spelled out


def test_demo_runs_offline_and_succeeds(tmp_path: Path) -> None:
    started = time.monotonic()
    done = cli("demo", env={"OPENINSPECT_HOME": str(tmp_path / "unused")}, timeout_s=90)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "return a + b" in done.stdout and "openinspect/" in done.stdout
    assert time.monotonic() - started < 60
