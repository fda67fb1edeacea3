"""Boot: clone the repo (unless the workspace already has it), ``setup.sh``, ``start.sh``.

``.openinspect/setup.sh`` runs on ``fresh`` and ``build`` boots (a failure or timeout is a warning
on ``fresh``, fatal on ``build``); ``.openinspect/start.sh`` runs on every boot but ``build`` (a
failure or timeout fails the boot). A ``repo_image`` boot starts on a workspace a ``build`` boot
left (the repo's image: the checkout with what ``setup.sh`` made), so it skips ``setup.sh`` and
first brings the checkout up to date: it fetches the clone source's branches into
``origin/*`` and fast-forwards the base branch (a checkout that cannot be fast-forwarded stays
at the image's commit, with a warning). Both run under ``/bin/bash`` with cwd = the repo and
``OPENINSPECT_BOOT_MODE`` set; their output becomes ``log`` events; a timeout kills their group.

The clone source is a path or URL; a file directly in the workspace is a git bundle copied in
for the clone (a bwrap box's repo), deleted once cloned. With ``clone_objects`` (a read-only
objects directory: a bwrap box's view of the mirror's) the clone borrows those objects instead of
copying them: the source is then a list of ``<sha> refs/heads/<branch>`` lines (the only refs the
box gets), and the clone is made by hand: ``git init``, the objects directory as the repo's one
alternate, the refs as ``origin``'s, the base branch checked out. Its disk is the checkout and
what the box writes.

A boot knows no session: it leaves the repo on the base branch. The session's work branch and
git proxy come later, with ``bind`` (:mod:`.binding`), so that a box can be made ahead of time.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .binding import PROXY_CONFIG
from .bridge import Outbox
from .procs import Child
from .protocol import (
    MAX_LOG_LINE_CHARS,
    BootMessage,
    BootMode,
    BootPhase,
    LogMessage,
    LogSource,
)

CLONE_TIMEOUT_S = 600.0
SETUP_SCRIPT = ".openinspect/setup.sh"
START_SCRIPT = ".openinspect/start.sh"
RUNTIME_WARNING = "[openinspect] warning: "
"""A log line the control plane also shows as a warning (``sessions.sandbox``)."""

_EmitLine = Callable[[str], Awaitable[None]]


class BootFailed(Exception):
    """A boot step failed; ``exit_code`` is the step's status when it ran to an end."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class BootPlan:
    """What to boot: where, from what, which branch, which mode, and the scripts' limits."""

    workspace: Path
    clone_source: str
    base_branch: str
    boot_mode: BootMode
    setup_timeout_s: float
    start_timeout_s: float
    clone_objects: str | None = None

    @property
    def repo_dir(self) -> Path:
        """Where the repo is checked out."""
        return self.workspace / "repo"


class Boot:
    """Runs a :class:`BootPlan`, reporting ``boot`` and ``log`` events through the outbox."""

    def __init__(
        self,
        plan: BootPlan,
        outbox: Outbox,
        env: Mapping[str, str],
    ) -> None:
        self._plan = plan
        self._outbox = outbox
        self._env = {**env, "OPENINSPECT_BOOT_MODE": plan.boot_mode}
        self.phase: BootPhase | None = None

    async def run(self) -> bool:
        """Boot once; sends ``ready`` or ``failed`` and returns whether it is ready."""
        started = time.monotonic()
        try:
            await self._clone()
            await self._setup()
            await self._start()
        except BootFailed as failure:
            message: BootMessage = {
                "type": "boot",
                "phase": "failed",
                "message": failure.message,
                "duration_ms": _ms_since(started),
            }
            if failure.exit_code is not None:
                message["exit_code"] = failure.exit_code
            await self._announce(message)
            return False
        await self._announce({"type": "boot", "phase": "ready", "duration_ms": _ms_since(started)})
        return True

    async def _announce(self, message: BootMessage) -> None:
        self.phase = message["phase"]
        await self._outbox.put(message)

    async def _clone(self) -> None:
        plan = self._plan
        if (plan.repo_dir / ".git").exists() and plan.boot_mode == "repo_image":
            if self._borrows():  # an image unpacked here may borrow from another host's mirror
                await self._check_borrowed()
            await self._refresh()
            return
        if (plan.repo_dir / ".git").exists():
            await self._announce(
                {"type": "boot", "phase": "clone", "message": "reusing the existing checkout"}
            )
            if plan.boot_mode == "snapshot_restore" and self._borrows():
                await self._check_borrowed()
            return
        await self._announce(
            {"type": "boot", "phase": "clone", "message": f"cloning branch {plan.base_branch}"}
        )
        if plan.repo_dir.exists():  # a clone interrupted by a crash; git refuses a non-empty dir
            shutil.rmtree(plan.repo_dir)
        if plan.clone_objects is not None:
            await self._clone_borrowing(plan.clone_objects)
        else:
            source, repo = plan.clone_source, str(plan.repo_dir)
            await self._git(
                [
                    "clone",
                    *(f"--config={key}={value}" for key, value in PROXY_CONFIG),
                    "--branch",
                    plan.base_branch,
                    "--",
                    source,
                    repo,
                ],
                cwd=plan.workspace,
                what="git clone",
            )
        self._discard_bundle()

    async def _refresh(self) -> None:
        """Bring an image's checkout up to the clone source's base branch: fetch its branches
        (the base one and those the provider carried) into ``origin/*``, then fast-forward. A
        bundle the provider copied in may hold only what the image lacks, or be left out when
        nothing is new."""
        plan = self._plan
        source = Path(plan.clone_source)
        if source.parent == plan.workspace and not source.exists():
            # A provider that copies the repo in sends nothing when nothing is new.
            await self._announce(
                {
                    "type": "boot",
                    "phase": "clone",
                    "message": f"the image's checkout is at the newest {plan.base_branch}",
                }
            )
            return
        await self._announce(
            {
                "type": "boot",
                "phase": "clone",
                "message": f"updating the image's checkout to the newest {plan.base_branch}",
            }
        )
        await self._git(
            [
                "fetch",
                "--quiet",
                "--no-tags",
                "--",
                plan.clone_source,
                "+refs/heads/*:refs/remotes/origin/*",
            ],
            cwd=plan.repo_dir,
            what="git fetch",
        )
        self._discard_bundle()
        code, timed_out = await self._run_logged(
            ["git", "merge", "--ff-only", "--quiet", f"refs/remotes/origin/{plan.base_branch}"],
            "clone",
            CLONE_TIMEOUT_S,
            cwd=plan.repo_dir,
        )
        if timed_out or code != 0:
            await self._log(
                "clone",
                f"{RUNTIME_WARNING}the image's checkout could not be fast-forwarded to the "
                f"newest {plan.base_branch}; it stays at the image's commit",
            )

    async def _clone_borrowing(self, objects: str) -> None:
        """The clone of the refs listed in the clone source, borrowing ``objects``."""
        plan = self._plan
        try:
            listed = Path(plan.clone_source).read_text()
        except OSError as exc:
            raise BootFailed(f"cannot read the refs to clone: {exc.strerror or exc}") from exc
        refs = {}
        for line in listed.splitlines():
            sha, _, ref = line.partition(" ")
            if not (len(sha) in (40, 64) and ref.startswith("refs/heads/")):
                raise BootFailed("the refs to clone are garbled")
            refs[ref.removeprefix("refs/heads/")] = sha
        base = refs.get(plan.base_branch)
        if base is None:
            raise BootFailed(f"the repo has no branch {plan.base_branch}")
        repo = str(plan.repo_dir)
        await self._git(
            ["init", "--quiet", f"--initial-branch={plan.base_branch}", "--", repo],
            cwd=plan.workspace,
            what="git init",
        )
        alternates = plan.repo_dir / ".git" / "objects" / "info" / "alternates"
        alternates.write_text(f"{objects}\n")
        steps = [
            *(["config", key, value] for key, value in PROXY_CONFIG),
            ["config", "remote.origin.url", plan.clone_source],
            ["config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"],
            ["config", f"branch.{plan.base_branch}.remote", "origin"],
            ["config", f"branch.{plan.base_branch}.merge", f"refs/heads/{plan.base_branch}"],
            ["update-ref", f"refs/heads/{plan.base_branch}", base],
            [
                "symbolic-ref",
                "refs/remotes/origin/HEAD",
                f"refs/remotes/origin/{plan.base_branch}",
            ],
        ]
        steps += [["update-ref", f"refs/remotes/origin/{b}", sha] for b, sha in refs.items()]
        steps.append(["reset", "--hard", "--quiet"])  # the checkout
        for args in steps:
            await self._git(["-C", repo, *args], cwd=plan.workspace, what=f"git {args[0]}")

    def _borrows(self) -> bool:
        return (self._plan.repo_dir / ".git" / "objects" / "info" / "alternates").is_file()

    async def _check_borrowed(self) -> None:
        """A restored clone that borrows objects (perhaps unpacked on another host, whose
        mirror may lack what it borrowed here) must find every commit of its refs: walked
        once (commits only, the mirror's commit-graph makes it quick); a miss fails the boot
        with the reason, never a repo that breaks later."""
        try:
            await self._git(
                ["-C", str(self._plan.repo_dir), "rev-list", "--all", "--quiet"],
                cwd=self._plan.workspace,
                what="checking the restored repo's history",
            )
        except BootFailed as failure:
            raise BootFailed(
                "the restored repo's history is not all here: it borrowed objects from a "
                "mirror this host's mirror does not match (see docs/sandboxes.md, "
                "'What a box costs')",
                failure.exit_code,
            ) from failure

    def _discard_bundle(self) -> None:
        """A clone source that is a file in the workspace is a bundle the provider copied in for
        this clone alone (:mod:`openinspect.sandboxes.payload`): it is not kept."""
        source = Path(self._plan.clone_source)
        if source.is_file() and source.parent == self._plan.workspace:
            source.unlink(missing_ok=True)

    async def _git(self, args: list[str], *, what: str, cwd: Path) -> None:
        code, timed_out = await self._run_logged(["git", *args], "clone", CLONE_TIMEOUT_S, cwd=cwd)
        if timed_out or code != 0:
            reason = f"timed out after {CLONE_TIMEOUT_S:g} s" if timed_out else f"exit {code}"
            raise BootFailed(f"{what} failed ({reason})", None if timed_out else code)

    async def _setup(self) -> None:
        plan = self._plan
        if plan.boot_mode not in ("fresh", "build") or not (plan.repo_dir / SETUP_SCRIPT).is_file():
            return
        await self._announce(
            {"type": "boot", "phase": "setup", "message": f"running {SETUP_SCRIPT}"}
        )
        code, timed_out = await self._run_script(SETUP_SCRIPT, "setup", plan.setup_timeout_s)
        if not timed_out and code == 0:
            return
        reason = (
            f"timed out after {plan.setup_timeout_s:g} s" if timed_out else f"exited with {code}"
        )
        if plan.boot_mode == "build":
            raise BootFailed(f"{SETUP_SCRIPT} {reason}", None if timed_out else code)
        await self._log("setup", f"{RUNTIME_WARNING}{SETUP_SCRIPT} {reason}; continuing")

    async def _start(self) -> None:
        plan = self._plan
        if plan.boot_mode == "build" or not (plan.repo_dir / START_SCRIPT).is_file():
            return
        await self._announce(
            {"type": "boot", "phase": "start", "message": f"running {START_SCRIPT}"}
        )
        code, timed_out = await self._run_script(START_SCRIPT, "start", plan.start_timeout_s)
        if timed_out:
            raise BootFailed(f"{START_SCRIPT} timed out after {plan.start_timeout_s:g} s")
        if code != 0:
            raise BootFailed(f"{START_SCRIPT} exited with {code}", code)

    async def _run_script(
        self, script: str, source: LogSource, timeout_s: float
    ) -> tuple[int, bool]:
        return await self._run_logged(
            ["/bin/bash", script], source, timeout_s, cwd=self._plan.repo_dir
        )

    async def _run_logged(
        self, argv: list[str], source: LogSource, timeout_s: float, *, cwd: Path
    ) -> tuple[int, bool]:
        """Run ``argv`` with its output as ``log`` lines; returns (exit status, timed out)."""
        try:
            child = await Child.spawn(argv, cwd=cwd, env=self._env, merge_stderr=True)
        except OSError as exc:
            raise BootFailed(f"cannot run {argv[0]}: {exc}") from exc
        lines = _LineSplitter(lambda line: self._log(source, line))
        result = await child.run(lambda _stream, data: lines.feed(data), timeout_s)
        await lines.close()
        return result

    async def _log(self, source: LogSource, line: str) -> None:
        message: LogMessage = {"type": "log", "source": source, "line": line}
        await self._outbox.put(message, droppable=True)


class _LineSplitter:
    """Turns a byte stream into lines (``\\r\\n`` and overlong lines handled)."""

    def __init__(self, emit: _EmitLine) -> None:
        self._emit = emit
        self._buffer = b""

    async def feed(self, data: bytes) -> None:
        """Emit every line ``data`` completes."""
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > MAX_LOG_LINE_CHARS:  # a progress bar without newlines
            complete.append(self._buffer)
            self._buffer = b""
        for raw in complete:
            await self._emit(_decode_line(raw))

    async def close(self) -> None:
        """Emit the last line even without a newline."""
        if self._buffer:
            await self._emit(_decode_line(self._buffer))
            self._buffer = b""


def _decode_line(raw: bytes) -> str:
    return raw.rstrip(b"\r").decode("utf-8", errors="replace")[:MAX_LOG_LINE_CHARS]


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
