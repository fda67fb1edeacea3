"""Git on the control-plane side: repo mirrors, and commit + push of a session's workspace.

The sandbox clones from a local bare mirror that the control plane keeps up to date, so a box
needs no network and no credentials to get the code; its ``origin`` then points at the git proxy
(``sessions.git_authority``). After each prompt the control plane commits the workspace inside the
sandbox with the prompting user as author and ``openinspect`` as committer, and the sandbox pushes
the session branch through the proxy like any developer would.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from openinspect.domain.models import Author
from openinspect.errors import GitError, InvalidInput
from openinspect.sandboxes.bridge import SandboxConnection

COMMITTER_NAME = "openinspect"
COMMITTER_EMAIL = "openinspect@users.noreply.openinspect.dev"
GIT_TIMEOUT_S = 300.0
COMMIT_SUBJECT_CHARS = 72


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    message: str
    files_changed: int


def git_env() -> dict[str, str]:
    """The environment git runs in: no inherited GIT_* variables, no prompts, C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


async def git(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = GIT_TIMEOUT_S,
) -> str:
    """Run git; return stdout. Raises ``GitError`` with git's own message on failure."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=env or git_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate()
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise GitError(f"git {args[0]} timed out after {timeout_s:g} s") from exc
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
        raise GitError(f"git {args[0]} failed: {message}", returncode=proc.returncode)
    return out.decode(errors="replace")


def normalize_origin(url: str) -> str:
    """A local path becomes absolute; URLs pass through. Empty input is refused."""
    url = url.strip()
    if not url:
        raise InvalidInput("A repo path or URL is required")
    if "://" in url or url.startswith("git@"):
        return url
    path = Path(url).expanduser()
    if not path.exists():
        raise InvalidInput(
            f"Repo path does not exist: {path}",
            hint="Give a local git repository path or a git URL",
        )
    return str(path.resolve())


def mirror_path(mirrors_dir: Path, origin: str) -> Path:
    """Where the bare mirror of ``origin`` lives."""
    return mirrors_dir / f"{hashlib.sha256(origin.encode()).hexdigest()[:24]}.git"


async def ensure_mirror(
    mirrors_dir: Path, origin: str, auth_env: dict[str, str] | None = None
) -> Path:
    """A bare mirror of ``origin`` under ``mirrors_dir``, created or refreshed. ``auth_env``
    carries credentials for the origin as environment (see ``Origins.git_env``)."""
    mirror = mirror_path(mirrors_dir, origin)
    env = {**git_env(), **(auth_env or {})}
    if (mirror / "HEAD").exists():
        await git("remote", "update", "--prune", cwd=mirror, env=env)
    else:
        mirrors_dir.mkdir(parents=True, exist_ok=True)
        tmp = mirror.with_name(f"{mirror.stem}.tmp-{os.getpid()}")
        await git("clone", "--mirror", "--quiet", origin, str(tmp), env=env)
        tmp.rename(mirror)
    return mirror


async def branch_exists(mirror: Path, branch: str) -> bool:
    try:
        await git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", cwd=mirror)
    except GitError:
        return False
    return True


def commit_message(prompt: str) -> str:
    first = next((line.strip() for line in prompt.splitlines() if line.strip()), "openinspect")
    subject = (
        first if len(first) <= COMMIT_SUBJECT_CHARS else first[: COMMIT_SUBJECT_CHARS - 1] + "…"
    )
    return f"{subject}\n\nPrompted through openinspect.\n"


# Runs inside the sandbox: the agent's repo, its config and its hooks are never opened by git on
# the host, where a planted core.fsmonitor or hook would run outside the box.
_COMMIT_SCRIPT = """set -e
git add --all
if git diff --cached --quiet; then exit 0; fi
git -c commit.gpgsign=false commit --quiet --no-verify -m "$OPENINSPECT_COMMIT_MESSAGE"
git rev-parse HEAD
git show --name-only --format= HEAD | grep -c . || true
"""


async def commit_in_sandbox(
    box: SandboxConnection, author: Author, message: str
) -> CommitInfo | None:
    """Commit every change in the sandbox's working tree as ``author``, with ``openinspect`` as
    committer. Returns None when there is nothing to commit."""
    env = {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": COMMITTER_NAME,
        "GIT_COMMITTER_EMAIL": COMMITTER_EMAIL,
        "OPENINSPECT_COMMIT_MESSAGE": message,
    }
    result = await box.exec(_COMMIT_SCRIPT, env=env, timeout_s=GIT_TIMEOUT_S)
    if result.exit_code != 0:
        raise GitError(f"Commit in the sandbox failed: {(result.stderr or result.stdout).strip()}")
    lines = result.stdout.split()
    if not lines:
        return None
    return CommitInfo(
        sha=lines[0], message=message, files_changed=int(lines[1]) if len(lines) > 1 else 0
    )


# Through the git proxy: the push is checked against the session's branch rules and recorded
# there, so the agent's own pushes and this one are treated alike.
_PUSH_SCRIPT = 'git push --porcelain origin "HEAD:refs/heads/$OPENINSPECT_BRANCH"'


async def push_in_sandbox(box: SandboxConnection, branch: str) -> None:
    """Push the sandbox's HEAD to ``branch`` on origin (the git proxy). Nothing new: no-op."""
    result = await box.exec(
        _PUSH_SCRIPT, env={"OPENINSPECT_BRANCH": branch}, timeout_s=GIT_TIMEOUT_S
    )
    if result.exit_code != 0:
        output = (result.stderr or result.stdout).strip()
        raise GitError(f"git push to {branch} failed: {output}")
