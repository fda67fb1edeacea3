"""Running a fake's ``openinspect testing <name>-server`` command as a real process, as a person
would: until it has printed its settings, then Ctrl-C (it must exit 0)."""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT_S = 30.0
READY = "Control endpoints:"
"""The line every fake prints after its settings."""


@contextlib.contextmanager
def fake_server_cli(
    command: str,
    args: list[str],
    env_prefix: str,
    cwd: Path | None = None,
    *,
    start_timeout_s: float = START_TIMEOUT_S,
) -> Iterator[tuple[dict[str, str], str]]:
    """Run ``openinspect testing COMMAND ARGS``; yield the ``env_prefix*`` settings it printed
    and all it printed up to ``READY``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "openinspect", "testing", command, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    env: dict[str, str] = {}
    output: list[str] = []
    try:
        while True:
            line = lines.get(timeout=start_timeout_s)
            assert line is not None, f"the command ended early: {''.join(output)}"
            output.append(line)
            if line.startswith(READY):
                break
            key, sep, value = line.strip().partition("=")
            if sep and key.startswith(env_prefix):
                env[key] = value
        yield env, "".join(output)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    assert code == 0, "".join(output)
