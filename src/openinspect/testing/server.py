"""A real openinspect server in a child process, for end-to-end tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

STARTUP_TIMEOUT_S = 180.0  # a cold start on a busy two-core machine takes about a minute


class ServerProcess:
    """``python -m openinspect serve --port 0`` with its own home. The URL and admin token are
    read from the files the server writes in its home."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.token = ""
        self.log_path = home.parent / f"{home.name}-server.log"

    def start(self, timeout_s: float = STARTUP_TIMEOUT_S) -> ServerProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        info = self.home / "server.json"
        info.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENINSPECT_")}
        env |= {
            "OPENINSPECT_HOME": str(self.home),
            "OPENINSPECT_SERVER__PORT": "0",
            "OPENINSPECT_LOG_LEVEL": "warning",
        } | self.env
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "openinspect", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log()}")
            if info.exists():
                data = json.loads(info.read_text())
                if data.get("pid") == self.proc.pid:
                    self.url = data["url"]
                    self.token = (self.home / "admin.token").read_text().strip()
                    if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                        return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"server did not start in {timeout_s} s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
