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
import re
import shutil
import tempfile
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
    if url.startswith("-"):  # git would read it as an option
        raise InvalidInput(
            f"Invalid repo {url!r}: it must not start with '-'",
            hint="Give a local git repository path or a git URL",
        )
    if "://" in url or url.startswith("git@"):
        return url
    missing = InvalidInput(  # the input as given: never the server's home it expands to
        f"Repo path does not exist: {url}",
        hint="Give a local git repository path or a git URL",
    )
    try:
        path = Path(url).expanduser()
        exists = path.exists()
    except RuntimeError:  # "~someone" of no such user
        raise missing from None
    except OSError:  # a name too long for the file system, say
        raise missing from None
    if not exists:
        raise missing
    return str(path.resolve())


MIRROR_CONFIG = (
    ("gc.pruneExpire", "never"),
    ("gc.reflogExpireUnreachable", "never"),
    ("core.sharedRepository", "0644"),
)
"""Set on every mirror: bwrap boxes' clones borrow its objects (git alternates, read-only), so
no object may ever be pruned from it, even once no ref of the mirror reaches it (a branch
force-pushed or deleted upstream): ``git gc`` (also the automatic one after a fetch) still packs
and repacks, but keeps unreachable objects instead of deleting them. And the box user of a root
server must read what a fetch adds, whatever the server's umask (the mirrors sit in the
server's private home, which no one else can enter)."""


def mirror_path(mirrors_dir: Path, origin: str) -> Path:
    """Where the bare mirror of ``origin`` lives."""
    return mirrors_dir / f"{hashlib.sha256(origin.encode()).hexdigest()[:24]}.git"


async def ensure_mirror(
    mirrors_dir: Path, origin: str, auth_env: dict[str, str] | None = None
) -> Path:
    """A bare mirror of ``origin`` under ``mirrors_dir``, created or refreshed. ``auth_env``
    carries credentials for the origin as environment (see ``Origins.git_env``). Callers hold
    the mirror's ``sessions.origins.mirror_lock`` (``Origins.mirror`` does); the clone goes to
    a temp path of its own, so even an unlocked caller never shares a half-made one."""
    mirror = mirror_path(mirrors_dir, origin)
    env = {**git_env(), **(auth_env or {})}
    if (mirror / "HEAD").exists():
        await _keep_objects(mirror)  # before the fetch, whose automatic gc must keep them
        await git("remote", "update", "--prune", cwd=mirror, env=env)
    else:
        mirrors_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{mirror.stem}.tmp-", dir=mirrors_dir))
        try:
            await git("clone", "--mirror", "--quiet", "--", origin, str(tmp), env=env)
            await _keep_objects(tmp)
            tmp.rename(mirror)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return mirror


async def _keep_objects(mirror: Path) -> None:
    """Apply :data:`MIRROR_CONFIG` to ``mirror`` (idempotent)."""
    for key, value in MIRROR_CONFIG:
        await git("config", key, value, cwd=mirror)


async def default_branch(mirror: Path) -> str | None:
    """The branch the origin's HEAD named when the mirror was cloned (``main``, ``master``…),
    or None when it names none."""
    try:
        out = await git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=mirror)
    except GitError:
        return None
    name = out.strip()
    return name or None


async def branch_exists(mirror: Path, branch: str) -> bool:
    try:
        await git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", cwd=mirror)
    except GitError:
        return False
    return True


async def branch_in_mirror(mirror: Path, branch: str) -> bool:
    """Whether the bare ``mirror`` has ``branch``, read from its ref files (no git process: a
    pooled box's claim asks); a mirror in another ref format asks git."""
    ref = f"refs/heads/{branch}"
    if (mirror / "reftable").exists():
        return await commit_of(mirror, ref) is not None
    if (mirror / ref).is_file():
        return True
    try:
        packed = (mirror / "packed-refs").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return False
    return any(line.endswith(f" {ref}") for line in packed.splitlines())


async def commit_of(mirror: Path, ref: str) -> str | None:
    """The commit ``ref`` (a full ref name) names in ``mirror``, or None when it names none."""
    try:
        out = await git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=mirror)
    except GitError:
        return None
    return out.strip() or None


def commit_message(prompt: str) -> str:
    first = next((line.strip() for line in prompt.splitlines() if line.strip()), "openinspect")
    subject = (
        first if len(first) <= COMMIT_SUBJECT_CHARS else first[: COMMIT_SUBJECT_CHARS - 1] + "…"
    )
    return f"{subject}\n\nPrompted through openinspect.\n"


GENERATED_PATTERNS = (
    "__pycache__/",
    "*.py[co]",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".tox/",
    ".nox/",
    ".coverage",
    "htmlcov/",
    "*.egg-info/",
    ".eggs/",
    ".venv/",
    ".ipynb_checkpoints/",
    "node_modules/",
    ".next/",
    ".parcel-cache/",
    ".turbo/",
    "dist/",
    "build/",
    ".DS_Store",
    "Thumbs.db",
    "*.swp",
)
"""What tools and editors leave behind: the end-of-prompt commit leaves these out (gitignore
syntax), except the ones the repo already tracks files of."""

# Runs inside the sandbox: the agent's repo, its config and its hooks are never opened by git on
# the host, where a planted core.fsmonitor or hook would run outside the box. The generated
# patterns go to an excludes file of our own under .git (never committed, the repo's .gitignore
# and info/exclude untouched), each only when `ls-files --ignored` finds no tracked file it
# matches. Files over the size limit are unstaged again (a tracked one keeps its old content).
_COMMIT_SCRIPT = """set -e
git_dir=$(git rev-parse --git-dir)
excludes="$git_dir/openinspect-exclude"
: > "$excludes"
while IFS= read -r pattern; do
  [ -n "$pattern" ] || continue
  if [ -z "$(git ls-files --cached --ignored --exclude="$pattern" | head -n 1)" ]; then
    printf '%s\n' "$pattern" >> "$excludes"
  fi
done <<< "$OPENINSPECT_GENERATED"
git -c core.excludesFile="$excludes" add --all
while IFS= read -r -d '' path; do
  size=$(git cat-file -s ":$path")
  if [ "$size" -gt "$OPENINSPECT_MAX_FILE_BYTES" ]; then
    git reset --quiet -- "$path"
    printf 'skipped %s %s\n' "$size" "$path"
  fi
done < <(git diff --cached --name-only --diff-filter=AM --no-renames -z)
if git diff --cached --quiet; then exit 0; fi
git -c commit.gpgsign=false commit --quiet --no-verify -m "$OPENINSPECT_COMMIT_MESSAGE"
printf 'commit %s\n' "$(git rev-parse HEAD)"
printf 'files %s\n' "$(git show --name-only --format= HEAD | grep -c . || true)"
"""


@dataclass(frozen=True)
class SkippedFile:
    """A file the commit left out for its size."""

    path: str
    size_bytes: int


@dataclass(frozen=True)
class CommitResult:
    """What the end-of-prompt commit did: ``commit`` is None when there was nothing to commit."""

    commit: CommitInfo | None
    skipped: tuple[SkippedFile, ...] = ()


def _parse_commit_output(stdout: str, message: str) -> CommitResult:
    sha: str | None = None
    files = 0
    skipped: list[SkippedFile] = []
    for line in stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "commit":
            sha = rest.strip()
        elif kind == "files" and rest.strip().isdigit():
            files = int(rest)
        elif kind == "skipped":
            size, _, path = rest.partition(" ")
            if size.isdigit():
                skipped.append(SkippedFile(path, int(size)))
    info = CommitInfo(sha=sha, message=message, files_changed=files) if sha else None
    return CommitResult(info, tuple(skipped))


async def commit_in_sandbox(
    box: SandboxConnection, author: Author, message: str, *, max_file_bytes: int
) -> CommitResult:
    """Commit the changes in the sandbox's working tree as ``author``, with ``openinspect`` as
    committer: everything but generated artefacts (:data:`GENERATED_PATTERNS`) and files over
    ``max_file_bytes``, which are reported in the result."""
    env = {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": COMMITTER_NAME,
        "GIT_COMMITTER_EMAIL": COMMITTER_EMAIL,
        "OPENINSPECT_COMMIT_MESSAGE": message,
        "OPENINSPECT_GENERATED": "\n".join(GENERATED_PATTERNS),
        "OPENINSPECT_MAX_FILE_BYTES": str(max_file_bytes),
    }
    result = await box.exec(_COMMIT_SCRIPT, env=env, timeout_s=GIT_TIMEOUT_S)
    if result.exit_code != 0:
        raise GitError(
            f"Commit in the sandbox failed: {clip_git_output(result.stderr or result.stdout)}"
        )
    return _parse_commit_output(result.stdout, message)


# Through the git proxy: the push is checked against the session's branch rules and recorded
# there, so the agent's own pushes and this one are treated alike. Only a commit of the session's
# own is pushed: not what the session pushed already, not a HEAD that the base branch contains.
_PUSH_SCRIPT = """set -e
head=$(git rev-parse --verify HEAD)
if [ "$head" = "$OPENINSPECT_PUSHED" ]; then echo unchanged; exit 0; fi
if git merge-base --is-ancestor "$head" "refs/remotes/origin/$OPENINSPECT_BASE" 2>/dev/null; then
  echo on-base
  exit 0
fi
git push origin "HEAD:refs/heads/$OPENINSPECT_BRANCH"
echo "pushed $head"
"""


async def push_in_sandbox(
    box: SandboxConnection, branch: str, *, base_branch: str, pushed_sha: str | None
) -> str | None:
    """Push the sandbox's HEAD to ``branch`` on origin (the git proxy) when it has a commit of
    its own: not ``pushed_sha`` (where the session last put the branch), not on ``base_branch``.
    Returns the pushed sha, or None when there was nothing to push."""
    env = {
        "OPENINSPECT_BRANCH": branch,
        "OPENINSPECT_BASE": base_branch,
        "OPENINSPECT_PUSHED": pushed_sha or "",
    }
    result = await box.exec(_PUSH_SCRIPT, env=env, timeout_s=GIT_TIMEOUT_S)
    if result.exit_code != 0:
        output = clip_git_output(f"{result.stderr}\n{result.stdout}")
        raise GitError(f"git push to {branch} failed: {output}")
    kind, _, sha = result.stdout.strip().rpartition("\n")[2].partition(" ")
    return sha.strip() if kind == "pushed" else None


GIT_MESSAGE_MAX_CHARS = 1500
_GIT_NOISE = ("hint:", "To ", "Done")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


def clip_git_output(text: str) -> str:
    """git's own words for a failure, fit to show people: URLs (the box's address of the proxy)
    replaced by ``origin``, git's advice lines dropped, cut to :data:`GIT_MESSAGE_MAX_CHARS`
    keeping the start and the end."""
    lines = [
        _URL.sub("origin", line.rstrip())
        for line in text.splitlines()
        if line.strip() and not line.startswith(_GIT_NOISE)
    ]
    message = "\n".join(lines) or "git gave no reason"
    if len(message) <= GIT_MESSAGE_MAX_CHARS:
        return message
    tail = GIT_MESSAGE_MAX_CHARS // 4
    return message[: GIT_MESSAGE_MAX_CHARS - tail - 1] + "…" + message[-tail:]
