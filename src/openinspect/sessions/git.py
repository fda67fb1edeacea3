"""Git on the control-plane side: repo mirrors, and commit + push of a session's workspace.

The sandbox clones from a local bare mirror that the control plane keeps up to date, so a box
needs no network and no credentials to get the code. After each prompt the control plane commits
the workspace with the prompting user as author and ``openinspect`` as committer, and pushes the
session branch to the real origin.
"""

from __future__ import annotations

import asyncio
import base64
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


def _env() -> dict[str, str]:
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
        env=env or _env(),
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


async def ensure_mirror(mirrors_dir: Path, origin: str) -> Path:
    """A bare mirror of ``origin`` under ``mirrors_dir``, created or refreshed."""
    mirror = mirror_path(mirrors_dir, origin)
    if (mirror / "HEAD").exists():
        await git("remote", "update", "--prune", cwd=mirror)
    else:
        mirrors_dir.mkdir(parents=True, exist_ok=True)
        tmp = mirror.with_name(f"{mirror.stem}.tmp-{os.getpid()}")
        await git("clone", "--mirror", "--quiet", origin, str(tmp))
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
# The commits that origin lacks, as a git bundle, base64 on stdout (the bridge carries text).
_BUNDLE_SCRIPT = "git bundle create --quiet - HEAD --not --remotes=origin | base64 -w0"
BUNDLE_MAX_BYTES = 200 * 1024 * 1024


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


async def push_from_sandbox(
    box: SandboxConnection, mirror: Path, origin: str, branch: str, sha: str, scratch_dir: Path
) -> None:
    """Carry the sandbox's new commits to the host as a bundle, then push ``sha`` to ``branch``
    on the real origin from the trusted mirror."""
    result = await box.exec(_BUNDLE_SCRIPT, timeout_s=GIT_TIMEOUT_S)
    if result.exit_code != 0:
        raise GitError(f"Bundling the session's commits failed: {result.stderr.strip()}")
    data = base64.b64decode(result.stdout.strip() or b"")
    if len(data) > BUNDLE_MAX_BYTES:
        raise GitError(
            f"The session's new commits are {len(data)} bytes; the limit is {BUNDLE_MAX_BYTES}",
            hint="Avoid committing large generated files",
        )
    scratch_dir.mkdir(parents=True, exist_ok=True)
    bundle = scratch_dir / f"push-{sha[:12]}.bundle"
    bundle.write_bytes(data)
    try:
        ref = f"refs/openinspect/push/{sha}"
        await git("fetch", "--quiet", "--no-tags", str(bundle), f"+HEAD:{ref}", cwd=mirror)
        fetched = (await git("rev-parse", ref, cwd=mirror)).strip()
        if fetched != sha:
            raise GitError(f"The sandbox sent {fetched[:12]} but committed {sha[:12]}")
        # An explicit URL, not the mirror's remote: the mirror's remote would push every ref.
        await git("push", "--quiet", origin, f"{sha}:refs/heads/{branch}", cwd=mirror)
        await git("update-ref", "-d", ref, cwd=mirror)
    finally:
        bundle.unlink(missing_ok=True)
