"""Is a push a fast-forward? Checked on the pushed objects before the push goes upstream.

The wire does not say: an update is an old and a new object id, and a force push looks like any
other. So for a branch a session may only fast-forward (``PushPolicy.granted``), the proxy keeps
the push's pack aside and asks a :class:`FastForwardCheck` which updates would rewind the branch.
:class:`MirrorAncestry` answers with git itself, in a throwaway bare repository that borrows the
objects of the repo's mirror (``objects/info/alternates``, read only): ``git index-pack
--fix-thin`` takes the pack in (a thin pack's bases come from the mirror), then ``git merge-base
--is-ancestor <old> <new>`` decides. A mirror that lacks the branch's current head (someone pushed
since it was fetched) is refreshed once and asked again. An update that cannot be checked (the
objects stay missing, git fails) counts as a rewind: the push is refused rather than let through.

Only this server's own temporary directory and the mirror are touched; nothing is written to the
mirror, and no hook or config of the pushed repository ever runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

from .push_rules import RefUpdate

log = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 600.0
"""Indexing a large pack takes a while; the proxy's own deadline bounds the whole push too."""
_ENV_KEPT = ("PATH", "HOME", "TMPDIR")
_ANCESTOR, _NOT_ANCESTOR = 0, 1


class FastForwardCheck(Protocol):
    """Which updates of a push are not fast-forwards."""

    async def rewinds(self, updates: Sequence[RefUpdate], pack: Path) -> set[str]:
        """The refs of ``updates`` (updates of existing refs: old and new ids set) whose new
        object does not descend from the old one, or that could not be checked. ``pack`` is the
        push's pack as it arrived (possibly empty, possibly thin). Never raises for a bad pack:
        an update it cannot vouch for is in the answer."""
        ...


MirrorSource = Callable[[bool], Awaitable[Path]]
"""The bare mirror whose objects a check borrows; called with True to fetch it first."""


class MirrorAncestry:
    """:class:`FastForwardCheck` by git, on the repo's mirror (see the module docstring)."""

    def __init__(self, mirror: MirrorSource, *, scratch_dir: Path | None = None) -> None:
        self._mirror = mirror
        self._scratch = scratch_dir

    async def rewinds(self, updates: Sequence[RefUpdate], pack: Path) -> set[str]:
        unsure = {u.ref for u in updates}
        for refresh in (False, True):
            try:
                mirror = await self._mirror(refresh)
            except Exception as exc:  # the mirror cannot be fetched: nothing is vouched for
                log.warning("fast-forward check: no mirror (%s)", type(exc).__name__)
                return unsure
            rewound, unknown = await _check(mirror, updates, pack, self._scratch)
            if not unknown:
                return rewound
            unsure = rewound | unknown
        return unsure


async def _check(
    mirror: Path, updates: Sequence[RefUpdate], pack: Path, scratch: Path | None
) -> tuple[set[str], set[str]]:
    """(the refs that rewind, the refs that could not be checked) against ``mirror``."""
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ff-check-", dir=scratch) as tmp:
        repo = Path(tmp) / "check.git"
        if await _git(["init", "--bare", "--quiet", str(repo)], Path(tmp)) != 0:
            return set(), {u.ref for u in updates}
        (repo / "objects" / "info" / "alternates").write_text(f"{mirror / 'objects'}\n")
        if pack.stat().st_size > 0:
            indexed = await _git(["index-pack", "--stdin", "--fix-thin"], repo, stdin=pack)
            if indexed != 0:
                return set(), {u.ref for u in updates}
        rewound: set[str] = set()
        unknown: set[str] = set()
        for update in updates:
            code = await _git(["merge-base", "--is-ancestor", update.old, update.new], repo)
            if code == _NOT_ANCESTOR:
                rewound.add(update.ref)
            elif code != _ANCESTOR:
                unknown.add(update.ref)
        return rewound, unknown


async def _git(args: list[str], cwd: Path, *, stdin: Path | None = None) -> int:
    """Run git quietly; its exit status (-1 when it timed out)."""
    env = {name: os.environ[name] for name in _ENV_KEPT if name in os.environ}
    env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1")
    source = os.open(stdin if stdin is not None else os.devnull, os.O_RDONLY)
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=cwd,
            env=env,
            stdin=source,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    finally:
        os.close(source)  # the child has its own copy
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            return await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
