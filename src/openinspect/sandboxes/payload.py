"""What a box gets as data rather than as a mount: the runtime's code and the repo to clone.

A bind mount names its host source in the box's ``/proc/self/mountinfo`` (the mount's root, e.g.
``/root/.venv/lib/python3.11/site-packages/websockets``), so the runtime's code and the mirror are
handed over as file contents instead, through descriptors bwrap copies into the box:

- the runtime: one zip (``openinspect/__init__.py``, ``openinspect/runtime/`` and the pure-Python
  ``websockets``; its C speedups are left out and it falls back to Python), imported with
  ``zipimport``; built once per process;
- the repo: a git bundle of the base branch (and the work branch when the mirror has it), which
  the runtime clones from and then deletes. Only made when the workspace has no checkout yet.
"""

from __future__ import annotations

import asyncio
import functools
import io
import os
import tempfile
import zipfile
from pathlib import Path

from openinspect.errors import SandboxUnavailable

from .local import RuntimeSources

BUNDLE_TIMEOUT_S = 600.0
_ZIP_SUFFIXES = (".py",)


@functools.cache
def runtime_zip(sources: RuntimeSources) -> bytes:
    """The runtime's code as a zip archive (sources only: ``-B`` keeps Python from writing
    bytecode, and a zip cannot hold loadable extension modules anyway)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(sources.package_init, "openinspect/__init__.py")
        _add_tree(archive, sources.runtime_dir, "openinspect/runtime")
        _add_tree(archive, sources.websockets_dir, "websockets")
    return buffer.getvalue()


def _add_tree(archive: zipfile.ZipFile, root: Path, prefix: str) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in _ZIP_SUFFIXES and "__pycache__" not in path.parts:
            archive.write(path, f"{prefix}/{path.relative_to(root).as_posix()}")


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


async def origin_bundle(mirror: str, branches: list[str], scratch: Path) -> int:
    """A descriptor of a git bundle of ``branches`` (those the mirror has) of ``mirror``.

    The bundle is written under ``scratch`` and unlinked at once: only the descriptor remains,
    so nothing of it is left on disk once bwrap has copied it. Raises ``SandboxUnavailable``.
    """
    refs = [f"refs/heads/{branch}" for branch in dict.fromkeys(branches) if branch]
    present = [ref for ref in refs if await _git_ok(mirror, "rev-parse", "--verify", "-q", ref)]
    if not present:
        raise SandboxUnavailable(f"the mirror has none of the branches {', '.join(branches)}")
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=".bundle-", suffix=".bundle", dir=scratch)
    os.close(fd)
    try:
        if not await _git_ok(mirror, "bundle", "create", "--quiet", path, *present):
            raise SandboxUnavailable("git could not bundle the repository for the sandbox")
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    finally:
        Path(path).unlink(missing_ok=True)


async def _git_ok(repo: str, *args: str) -> bool:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1"}
    proc = await asyncio.create_subprocess_exec(
        "git",
        "-C",
        repo,
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        return await asyncio.wait_for(proc.wait(), BUNDLE_TIMEOUT_S) == 0
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False
