"""What the box tests of repo secrets share: values, a repo whose setup prints them, and a
script whose agent does everything a careless agent does with an environment."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

GLOBAL_TOKEN = "gl-SECRET-0f1e2d3c4b5a6978"
REPO_TOKEN = "rp-SECRET-8a7b6c5d4e3f2019"
"""The repo's ``API_TOKEN``, over the global one of the same name."""
DEPLOY_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAAkeySECRETmaterial0001\n"
    "AAAAC3NzaC1lZDI1NTE5AAAAkeySECRETmaterial0002\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
VALUES = (GLOBAL_TOKEN, REPO_TOKEN, DEPLOY_KEY)
FRAGMENTS = (
    "SECRET-0f1e2d3c4b5a6978",
    "SECRET-8a7b6c5d4e3f2019",
    "keySECRETmaterial0001",
    "keySECRETmaterial0002",
)
"""Parts of the values that must not be seen anywhere either."""
SETUP_SH = 'echo "setup sees API_TOKEN=$API_TOKEN"\necho "$DEPLOY_KEY"\n'
HASH_COMMAND = 'printf %s "$API_TOKEN" | sha256sum; printf %s "$DEPLOY_KEY" | sha256sum'
COMMANDS = [
    "env",
    "echo $API_TOKEN",
    'echo "$DEPLOY_KEY"; echo $DEPLOY_KEY',
    # The value in two chunks a while apart, and on stderr.
    'printf %s "${API_TOKEN:0:12}"; sleep 0.4; printf "%s\\n" "${API_TOKEN:12}"; '
    'echo "$API_TOKEN" >&2',
    'python3 -c "import os; print(os.environ)"',
    'printf %s "$API_TOKEN" > leak.txt; cat /proc/self/environ | tr "\\0" "\\n"',
    "git config user.name x; git push origin HEAD:refs/heads/$API_TOKEN 2>&1 | tail -3",
    # Straight into the runtime's own stderr, the box's log file on the host (where the box
    # may: a bubblewrap box may not open its runtime's descriptors).
    'echo "to the box log: $API_TOKEN" > /proc/$PPID/fd/2',
    HASH_COMMAND,
]
HASHES = len(COMMANDS) - 1
"""The index of the command that prints the values' hashes."""
BOX_LOG_LINE = "to the box log: [secret:API_TOKEN]"


def script() -> dict[str, Any]:
    """One tool call a turn: every command, then reading and grepping the file the value was
    written to."""
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "bash", "args": {"command": c}}]} for c in COMMANDS
    ]
    turns += [
        {"tool_calls": [{"name": "read", "args": {"path": "leak.txt"}}]},
        {"tool_calls": [{"name": "grep", "args": {"pattern": "SECRET"}}]},
        {"text": "Printed everything."},
    ]
    return {"turns": turns}


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def leaks(text: str) -> list[str]:
    """The values (or their parts) found in ``text``."""
    return [v for v in (*VALUES, *FRAGMENTS) if v in text]


def make_repo(root: Path) -> Path:
    """A bare origin whose ``setup.sh`` prints the secrets; returns its path."""
    origin, work = root / "secret-origin.git", root / "secret-work"
    run = lambda *args, cwd=root: subprocess.run(  # noqa: E731
        ["git", *args], cwd=cwd, check=True, capture_output=True, env={"GIT_CONFIG_NOSYSTEM": "1"}
    )
    run("init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    work.mkdir()
    (work / ".openinspect").mkdir()
    (work / ".openinspect" / "setup.sh").write_text(SETUP_SH)
    (work / "README.md").write_text("# secrets\n")
    run("init", "--quiet", "--initial-branch=main", cwd=work)
    run("add", ".", cwd=work)
    run("-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm", "s", cwd=work)
    run("push", "--quiet", str(origin), "main", cwd=work)
    return origin
