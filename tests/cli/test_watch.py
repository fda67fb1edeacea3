"""``sessions watch`` prints a running command's output as it is produced, then one result line
with the elapsed time, and does not print the output again when the stored result arrives."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.bwrap]

SLOW = "for i in 1 2 3; do echo line-$i; sleep 0.5; done"
DEADLINE_S = 90.0


def _lines(proc: subprocess.Popen[str], into: queue.Queue[tuple[float, str]]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        into.put((time.monotonic(), line.rstrip("\n")))


def test_watch_streams_a_slow_command_and_prints_its_output_once(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(
        {
            "turns": [
                {"tool_calls": [{"name": "bash", "args": {"command": SLOW}}]},
                {"text": "Counted."},
            ]
        }
    )
    api = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=30
    )
    session = api.post("/api/sessions", json={"repo": str(origin)}).json()["session"]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OPENINSPECT_") and k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
    }
    env |= {
        "OPENINSPECT_URL": server.url,
        "OPENINSPECT_TOKEN": server.token,
        "OPENINSPECT_HOME": str(server.home),
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
    }
    watcher = subprocess.Popen(
        [sys.executable, "-m", "openinspect", "sessions", "watch", session["id"]],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    seen: list[tuple[float, str]] = []
    lines: queue.Queue[tuple[float, str]] = queue.Queue()
    threading.Thread(target=_lines, args=(watcher, lines), daemon=True).start()
    try:
        # The watch prints the session's header first: it is subscribed.
        seen.append(lines.get(timeout=DEADLINE_S))
        made = api.post(f"/api/sessions/{session['id']}/prompts", json={"content": "count"})
        assert made.status_code in (200, 201, 202), made.text
        deadline = time.monotonic() + DEADLINE_S
        while not any("prompt success" in line for _, line in seen):
            seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
        api.close()

    text = [line for _, line in seen]
    assert text.count("  line-1") == 1 and text.count("  line-2") == 1, text
    assert text.count("  line-3") == 1, text
    first_at = next(t for t, line in seen if line == "  line-1")
    result_at, result = next((t, line) for t, line in seen if line.startswith("  exit "))
    # line-1 was printed while the command ran, a second before it ended.
    assert result_at - first_at > 0.8, text
    elapsed = re.fullmatch(r"  exit 0 · (\d+\.\d) s", result)
    assert elapsed is not None and float(elapsed[1]) >= 1.0, result
    assert text.index("  line-3") < text.index(result)
    assert not [line for line in text if "[exit code" in line]
