"""Running the real ``openinspect`` command in a child process, as a person would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from openinspect.testing.server import ServerProcess

HEAVY_MODULES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "aiosqlite",
    "pydantic_ai",
    "pydantic_settings",
    "githubkit",
    "openinspect.api",
    "openinspect.store",
    "openinspect.sessions",
    "openinspect.agent",
    "openinspect.settings",
)
"""The server's packages: a client command that imports any of them starts seconds slower."""


def cli(
    *args: str,
    server: ServerProcess | None = None,
    timeout_s: float = 120,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    python_flags: tuple[str, ...] = (),
    stdin_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    # The runner's own settings and model keys must not leak into the CLI under test.
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OPENINSPECT_") and k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
    }
    full_env["COLUMNS"] = "200"
    if server is not None:
        full_env |= {
            "OPENINSPECT_URL": server.url,
            "OPENINSPECT_TOKEN": server.token,
            "OPENINSPECT_HOME": str(server.home),
        }
    full_env |= env or {}
    return subprocess.run(
        [sys.executable, *python_flags, "-m", "openinspect", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        cwd=cwd,
        input=stdin_text,
    )


def imported_modules(importtime_stderr: str) -> set[str]:
    """Module names from ``python -X importtime`` output."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                names.add(name)
    return names


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules for h in HEAVY_MODULES if m == h or m.startswith(f"{h}."))
