"""What a box gets as data rather than as a mount: the runtime's code and the repo to clone.

A bind mount names its host source in the box's ``/proc/self/mountinfo`` (the mount's root, e.g.
``/root/.venv/lib/python3.11/site-packages/websockets``), so the runtime's code and the mirror are
handed over as file contents instead, through descriptors bwrap copies into the box:

- the runtime: one zip (``openinspect/__init__.py``, ``openinspect/runtime/`` and the pure-Python
  ``websockets``; its C speedups are left out and it falls back to Python), imported with
  ``zipimport``; built once per process;
- the repo: the refs of the base branch (and the work branch when the mirror has it), whose
  objects a staged box borrows from the mirror's read-only overlay (:func:`origin_refs`), or,
  for a box that binds its workspace, a git bundle of them (:func:`origin_bundle`); the runtime
  clones and deletes it. Only made when the workspace has no checkout yet, or (a bundle of what
  the image lacks) for a box started from a repo image, which fetches the newest commits from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path

from openinspect.errors import SandboxUnavailable
from openinspect.timeouts import wait_for

from .local import RuntimeSources

BUNDLE_TIMEOUT_S = 600.0


BUILD_TIMEOUT_S = 120.0
_BUILD_SCRIPT = """
import io, json, os, py_compile, sys, tempfile, zipfile
files = json.loads(sys.argv[1])
buffer = io.BytesIO()
with tempfile.TemporaryDirectory() as scratch, zipfile.ZipFile(buffer, "w") as archive:
    for source, name in files:
        archive.write(source, name)
        compiled = os.path.join(scratch, name[:-3] + ".pyc")
        os.makedirs(os.path.dirname(compiled), exist_ok=True)
        py_compile.compile(source, cfile=compiled, dfile=name, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        archive.write(compiled, name[:-3] + ".pyc")
sys.stdout.buffer.write(buffer.getvalue())
"""
_build_lock = threading.Lock()


def runtime_zip(sources: RuntimeSources, python: str) -> bytes:
    """:func:`build_runtime_zip`, built once per process (callers wait for one build)."""
    with _build_lock:
        return build_runtime_zip(sources, python)


def warm_runtime_zip(sources: RuntimeSources, python: str) -> None:
    """Build the runtime's zip in the background now, so the first box does not wait for it."""

    def build() -> None:
        with contextlib.suppress(SandboxUnavailable):  # the first box reports it
            runtime_zip(sources, python)

    threading.Thread(target=build, daemon=True).start()


@functools.cache
def build_runtime_zip(sources: RuntimeSources, python: str) -> bytes:
    """The runtime's code as a zip archive: sources, and bytecode compiled by the box's own
    interpreter ``python`` (unchecked-hash ``.pyc``, which ``zipimport`` uses as is), so a box
    compiles nothing when it starts. The build runs in that interpreter, in a process of its
    own: compiling in the server would hold its event loop's interpreter lock. A zip cannot
    hold loadable extension modules, so websockets' C speedups stay out (it falls back to
    Python). Raises ``SandboxUnavailable`` when the interpreter cannot build it."""
    files = [(str(source), name) for source, name in _runtime_files(sources)]
    try:
        done = subprocess.run(
            [python, "-I", "-c", _BUILD_SCRIPT, json.dumps(files)],
            capture_output=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"cannot build the sandbox runtime with {python}: {exc}") from exc
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["failed"]
        raise SandboxUnavailable(f"cannot build the sandbox runtime with {python}: {error[0]}")
    return done.stdout


def _runtime_files(sources: RuntimeSources) -> list[tuple[Path, str]]:
    """Every source file of the runtime, with its name in the archive."""
    files = [(sources.package_init, "openinspect/__init__.py")]
    for root, prefix in (
        (sources.runtime_dir, "openinspect/runtime"),
        (sources.websockets_dir, "websockets"),
    ):
        for path in sorted(root.rglob("*.py")):
            if path.is_file() and "__pycache__" not in path.parts:
                files.append((path, f"{prefix}/{path.relative_to(root).as_posix()}"))
    return files


def data_fd(name: str, data: bytes) -> int:
    """An anonymous in-memory file holding ``data``, positioned at its start (close-on-exec:
    only a child given it in ``pass_fds`` inherits it)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


async def origin_bundle(
    mirror: str, branches: list[str], scratch: Path, *, known: tuple[str, ...] = ()
) -> int | None:
    """A descriptor of a git bundle of ``branches`` (those the mirror has) of ``mirror``.

    ``known``: commits the box's checkout has already (a repo image's); the bundle leaves out
    what they reach, and is None when every branch is at one of them (nothing to fetch). The
    bundle is written under ``scratch`` and unlinked at once: only the descriptor remains, so
    nothing of it is left on disk once bwrap has copied it. Raises ``SandboxUnavailable``.
    """
    refs = [f"refs/heads/{branch}" for branch in dict.fromkeys(branches) if branch]
    listed = await _git(mirror, "for-each-ref", "--format=%(objectname) %(refname)", *refs)
    tips: dict[str, str] = {}
    for line in (listed or "").splitlines():
        sha, _, ref = line.partition(" ")
        tips[ref] = sha
    present = [ref for ref in refs if ref in tips]
    if not present:
        raise SandboxUnavailable(f"the mirror has none of the branches {', '.join(branches)}")
    have = [sha for sha in dict.fromkeys(known) if sha and await _has_commit(mirror, sha)]
    if have and all(tips[ref] in have for ref in present):
        return None
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=".bundle-", suffix=".bundle", dir=scratch)
    os.close(fd)
    try:
        exclude = [f"^{sha}" for sha in have]
        if not await _git_ok(mirror, "bundle", "create", "--quiet", path, *present, *exclude):
            raise SandboxUnavailable("git could not bundle the repository for the sandbox")
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    finally:
        Path(path).unlink(missing_ok=True)


async def _has_commit(repo: str, sha: str) -> bool:
    if not all(c in "0123456789abcdef" for c in sha) or not 4 <= len(sha) <= 64:
        return False
    return await _git_ok(repo, "cat-file", "-e", f"{sha}^{{commit}}")


async def origin_refs(mirror: str, branches: list[str]) -> bytes:
    """``<sha> refs/heads/<branch>`` lines of ``branches`` (those the mirror has): what a box
    whose clone borrows the mirror's objects clones (nothing else of the mirror's refs).
    Raises ``SandboxUnavailable``."""
    refs = [f"refs/heads/{branch}" for branch in dict.fromkeys(branches) if branch]
    listed = await _git(mirror, "for-each-ref", "--format=%(objectname) %(refname)", *refs)
    lines = [line for line in (listed or "").splitlines() if line.split(" ", 1)[-1] in refs]
    if not lines:
        raise SandboxUnavailable(f"the mirror has none of the branches {', '.join(branches)}")
    return "".join(f"{line}\n" for line in lines).encode()


async def _git_ok(repo: str, *args: str) -> bool:
    return await _git(repo, *args) is not None


async def _git(repo: str, *args: str) -> str | None:
    """git's output in ``repo``, or None when it fails or takes too long."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1"}
    proc = await asyncio.create_subprocess_exec(
        "git",
        "-C",
        repo,
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await wait_for(proc.communicate(), BUNDLE_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    return out.decode(errors="replace") if proc.returncode == 0 else None
