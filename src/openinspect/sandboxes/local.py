"""What the local backends (``bwrap``, ``process``) share: where the runtime's code is, the
sandbox environment, and starting, awaiting and stopping a host process per sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import openinspect
from openinspect.errors import SandboxError, SandboxUnavailable
from openinspect.secrets.redact import StreamRedactor, redactor_of
from openinspect.timeouts import wait_for

from .base import SandboxExit, SandboxHandle, SandboxSpec

DESTROY_GRACE_S = 3.0
"""Time a sandbox process gets between SIGTERM and SIGKILL on destroy."""
DRAIN_GRACE_S = 1.0
"""Time the log drain gets to read what is left in the pipe once the process is gone."""
MAX_LOG_BYTES = 8 * 1024 * 1024
"""Output of a sandbox process kept in its log file; the rest is dropped."""
LOG_CHUNK_BYTES = 64 * 1024
LOG_CUT_NOTICE = b"\n[openinspect] log cut: the sandbox wrote more than the log keeps\n"
RUNTIME_MODULE = "openinspect.runtime"
LANG = "C.UTF-8"
TERM = "xterm-256color"
HOME_DIRNAME = ".home"
REPO_DIRNAME = "repo"
UNKNOWN_EXIT = SandboxExit(-1)
"""What ``wait`` says of a box this provider does not know (never made, or destroyed)."""


@dataclass
class LocalHandle(SandboxHandle):
    """A box of a local backend: a host process and host paths, which only its provider reads.

    ``pid`` is the host process the provider started (the bwrap monitor or the runtime itself);
    ``repo_dir`` is the host path of the checkout; ``log_path`` collects the sandbox process's
    stdout and stderr on the host, outside the sandbox's view.
    """

    pid: int
    workspace_dir: Path
    repo_dir: Path
    log_path: Path


def local_handle(handle: SandboxHandle, provider: str) -> LocalHandle:
    """``handle`` as the local backend ``provider`` made it; a handle of another backend is a
    programming error, reported as ``SandboxError`` (never an attribute error deeper down)."""
    if not isinstance(handle, LocalHandle) or handle.provider != provider:
        raise SandboxError(
            f"sandbox {handle.sandbox_id} is a {handle.provider!r} box, not one of {provider!r}"
        )
    return handle


@dataclass(frozen=True)
class RuntimeSources:
    """Host paths of everything the runtime imports: nothing but these reaches a sandbox."""

    package_init: Path
    """``openinspect/__init__.py`` (kept import-free so that it is safe to expose)."""
    runtime_dir: Path
    """``openinspect/runtime/``."""
    websockets_dir: Path
    """The ``websockets`` package, the runtime's only dependency."""


def runtime_sources() -> RuntimeSources:
    """Locate the runtime's code in the installed packages."""
    spec = importlib.util.find_spec("websockets")
    if spec is None or not spec.submodule_search_locations:
        raise SandboxUnavailable(
            "the sandbox runtime needs the 'websockets' package, which is not installed",
            hint="pip install websockets",
        )
    package_dir = Path(openinspect.__file__).parent
    return RuntimeSources(
        package_init=package_dir / "__init__.py",
        runtime_dir=package_dir / "runtime",
        websockets_dir=Path(next(iter(spec.submodule_search_locations))),
    )


def runtime_argv(python: str) -> list[str]:
    """How to start the runtime: ``-s`` ignores a user site the sandbox could plant in its
    home, ``-B`` writes no bytecode next to the read-only code."""
    return [python, "-s", "-B", "-m", RUNTIME_MODULE]


def sandbox_env(
    spec: SandboxSpec,
    *,
    path: str,
    home: str,
    pythonpath: str,
    runtime_env: Mapping[str, str],
) -> dict[str, str]:
    """The whole environment of a sandbox's runtime (nothing is inherited from the server).

    ``spec.env`` may override ``PATH``, ``HOME``, ``LANG`` and ``TERM``; its ``PYTHONPATH`` is
    appended to the runtime's (the runtime strips its own entry for commands); ``OPENINSPECT_*``
    names are reserved for the runtime.
    """
    env = {
        "PATH": path,
        "HOME": home,
        "LANG": LANG,
        "TERM": TERM,
        # The host's system gitconfig can carry credential helpers and URL rewrites.
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    env.update({k: v for k, v in spec.env.items() if not k.startswith("OPENINSPECT_")})
    extra_pythonpath = spec.env.get("PYTHONPATH")
    env["PYTHONPATH"] = (
        f"{pythonpath}{os.pathsep}{extra_pythonpath}" if extra_pythonpath else pythonpath
    )
    env.update(runtime_env)
    return env


def prepare_workspace(spec: SandboxSpec) -> Path:
    """Create the workspace and its home dir; returns the host log file path (beside it)."""
    try:
        spec.workspace_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (spec.workspace_dir / HOME_DIRNAME).mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise SandboxUnavailable(
            f"cannot create the workspace {spec.workspace_dir}: {exc.strerror or exc}",
            hint="check that the workspaces directory is writable",
        ) from exc
    return spec.workspace_dir.parent / f"{spec.workspace_dir.name}.log"


WORKSPACE_SIBLING_SUFFIXES = (".log", ".img", ".work", ".snapshot")
"""What a local box keeps beside its workspace: its log, its disk image (``workspace_fs``), its
overlay's work directory (``staging``), its snapshot marker (``snapshots``)."""


def _siblings(workspace: Path) -> list[tuple[Path, str]]:
    return [(workspace.parent / f"{workspace.name}{s}", s) for s in WORKSPACE_SIBLING_SUFFIXES]


def move_workspace(source: Path, target: Path) -> bool:
    """Move a stopped box's workspace, with what is beside it, to ``target`` (on the same file
    system); nothing moves when ``target`` exists. Whether it moved. A running box's cannot
    move: a root server's workspace is a mounted image, which ``rename`` refuses (EBUSY)."""
    if target.exists() or not source.is_dir():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    source.rename(target)
    for path, suffix in _siblings(source):
        if path.exists():
            path.rename(target.parent / f"{target.name}{suffix}")
    return True


def remove_workspace(workspace: Path) -> None:
    """Delete a stopped box's workspace and what is beside it (a pool box never claimed)."""
    for path, _ in _siblings(workspace):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    shutil.rmtree(workspace, ignore_errors=True)


class LocalProcesses:
    """Host processes of one local provider, by sandbox id.

    A process's stdout and stderr are one pipe that the server drains into the sandbox's log
    file, so the process holds no descriptor of that file (a box could reopen it through
    ``/proc/self/fd/1``). The log keeps the first :data:`MAX_LOG_BYTES`; the rest is read and
    dropped, so a chatty sandbox neither fills the disk nor blocks on a full pipe. The values of
    ``spec.env`` (the box's secrets) are redacted from it as it is written.

    A process's exit is awaited on the event loop through a pidfd (:class:`_Exit`), not with
    ``asyncio.create_subprocess_exec``, whose child watcher on Python 3.11 parks a thread in
    ``waitpid`` for as long as each process lives: a thread per box.
    """

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._procs: dict[str, _Exit] = {}
        self._drains: dict[str, asyncio.Task[None]] = {}

    async def start(
        self,
        spec: SandboxSpec,
        argv: list[str],
        env: Mapping[str, str],
        *,
        log_path: Path,
        pass_fds: tuple[int, ...] = (),
        cwd: Path | None = None,
    ) -> LocalHandle:
        """Start ``argv`` in a new session (in ``cwd``, by default the workspace), its output
        drained into ``log_path``."""
        try:
            log = log_path.open("ab")
        except OSError as exc:
            raise SandboxUnavailable(
                f"cannot open the {self._provider} sandbox's log: {exc.strerror or exc}"
            ) from exc
        try:
            # Spawning blocks no longer than asyncio's own spawn, which is this same Popen.
            popen = subprocess.Popen(  # noqa: ASYNC220
                argv,
                cwd=cwd or spec.workspace_dir,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: destroy signals it alone
                pass_fds=pass_fds,
            )
        except OSError as exc:
            log.close()
            raise SandboxUnavailable(
                f"cannot start the {self._provider} sandbox ({argv[0]}): {exc.strerror or exc}"
            ) from exc
        proc = _Exit(popen)
        assert popen.stdout is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=LOG_CHUNK_BYTES)
        pipe, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), popen.stdout
        )
        self._procs[spec.sandbox_id] = proc
        redactor = redactor_of(spec.env.items()).byte_stream() if spec.env else None
        self._drains[spec.sandbox_id] = asyncio.create_task(_drain(reader, log, pipe, redactor))
        return LocalHandle(
            sandbox_id=spec.sandbox_id,
            provider=self._provider,
            pid=proc.pid,
            workspace_dir=spec.workspace_dir,
            repo_dir=spec.workspace_dir / REPO_DIRNAME,
            log_path=log_path,
        )

    async def wait(self, handle: SandboxHandle) -> int:
        """The process's exit status once it exits; -1 for an unknown or destroyed sandbox."""
        proc = self._procs.get(handle.sandbox_id)
        if proc is None:
            return UNKNOWN_EXIT.status
        return await proc.wait()

    async def stop(self, handle: SandboxHandle, grace_s: float = DESTROY_GRACE_S) -> None:
        """SIGTERM the process group, wait up to ``grace_s``, SIGKILL it; idempotent."""
        proc = self._procs.get(handle.sandbox_id)
        if proc is None:
            return
        try:
            if proc.returncode is None:
                _signal_group(proc.pid, signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await wait_for(proc.wait(), grace_s)
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
        finally:
            self._procs.pop(handle.sandbox_id, None)
            drain = self._drains.pop(handle.sandbox_id, None)
            if drain is not None:
                # The pipe ends with the last process holding it; a straggler must not hold
                # up the destroy.
                with contextlib.suppress(TimeoutError):
                    await wait_for(asyncio.shield(drain), DRAIN_GRACE_S)
                drain.cancel()
                await asyncio.gather(drain, return_exceptions=True)


class _Exit:
    """A started process and its exit status, awaited through a pidfd on the event loop (or,
    where the kernel has no pidfds, in a thread)."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid
        loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = loop.create_future()
        self._pidfd: int | None = None
        self._waiter: asyncio.Future[int] | None = None
        try:
            self._pidfd = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):  # not Linux 5.3+: the old way, a thread
            self._waiter = asyncio.ensure_future(asyncio.to_thread(popen.wait))
            self._waiter.add_done_callback(
                lambda t: self._settle(None if t.cancelled() else t.result())
            )
        else:
            loop.add_reader(self._pidfd, self._reap, loop)

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def _reap(self, loop: asyncio.AbstractEventLoop) -> None:
        # A pidfd turns readable once the process has exited; poll() collects its status.
        code = self.popen.poll()
        if code is not None and self._pidfd is not None:
            loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
            self._settle(code)

    def _settle(self, code: int | None) -> None:
        if not self._exited.done():
            self._exited.set_result(code if code is not None else -1)

    async def wait(self) -> int:
        """The exit status (negative: the signal that ended it), once the process exited."""
        return await asyncio.shield(self._exited)


async def _drain(
    stream: asyncio.StreamReader,
    log: BinaryIO,
    pipe: asyncio.BaseTransport | None = None,
    redactor: StreamRedactor[bytes] | None = None,
) -> None:
    """Copy ``stream`` into ``log`` up to :data:`MAX_LOG_BYTES`, then discard; closes ``log``
    (and ``pipe``, the transport feeding ``stream``). With ``redactor``, what is written is
    redacted first (and what it holds back is written at the end)."""
    written = 0

    def keep(chunk: bytes) -> None:
        nonlocal written
        if written >= MAX_LOG_BYTES or not chunk:
            return
        kept = chunk[: MAX_LOG_BYTES - written]
        written += len(kept)
        log.write(kept)
        if written >= MAX_LOG_BYTES:
            log.write(LOG_CUT_NOTICE)
        log.flush()

    try:
        while chunk := await stream.read(LOG_CHUNK_BYTES):
            if written >= MAX_LOG_BYTES:
                continue
            keep(redactor.feed(chunk) if redactor is not None else chunk)
        if redactor is not None:
            keep(redactor.flush() or b"")
    except OSError:
        pass  # a full disk must not take the server down; the sandbox keeps running
    finally:
        log.close()
        if pipe is not None:
            pipe.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
