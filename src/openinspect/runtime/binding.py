"""``bind``: the session a booted box serves, learnt over the bridge after the box was made.

A box boots on its repo's base branch knowing no session (so a pool can make boxes ahead of
time); ``bind`` then checks out the session's work branch and, with a git proxy path, starts the
loopback forwarder (:mod:`.gitforward`) and points ``origin`` at it with the config that keeps
git from asking anyone for credentials (:data:`PROXY_CONFIG`). The forwarder's port changes from
runtime to runtime, so a restarted box reusing its checkout is bound again and ``origin``
follows. A box serves one session: binding it to another branch or path is refused.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from pathlib import Path

from .address import BridgeAddress
from .gitforward import GIT_PATH_PREFIX, GitForwarder
from .hibernate import BoundState
from .params import optional_str, require_str
from .procs import Child
from .protocol import MAX_BRANCH_CHARS, MAX_MESSAGE_CHARS, BindResult, RpcFailure, Stream

GIT_TIMEOUT_S = 120.0
MAX_REMOTE_PATH_CHARS = 1024
PROXY_CONFIG = (
    ("credential.helper", ""),  # none: the forwarder adds the only credential there is
    ("http.lowSpeedLimit", "1"),  # a connection that moves nothing for 10 minutes is dead
    ("http.lowSpeedTime", "600"),
    ("push.default", "current"),  # a plain `git push` pushes the session branch
)


class Binding:
    """The one session of a box: ``bind`` applies it, ``close`` stops the forwarder."""

    def __init__(
        self,
        repo_dir: Path,
        env: Mapping[str, str],
        *,
        bridge: BridgeAddress,
        token: str,
        tls: ssl.SSLContext | None = None,
        resumed: BoundState | None = None,
        forwarder_fd: int | None = None,
    ) -> None:
        self._repo_dir = repo_dir
        self._env = dict(env)
        self._bridge = bridge
        self._token = token
        self._tls = tls
        self._forwarder: GitForwarder | None = None
        self._bound: tuple[str, str | None] | None = None
        self._result: BindResult | None = None
        self._lock = asyncio.Lock()  # one bind at a time: a second waits and sees the first
        self._forwarder_fd = forwarder_fd
        if resumed is not None:  # a hibernated runtime's binding (:mod:`.hibernate`)
            self._bound = (resumed.branch, resumed.remote_path)
            self._result = resumed.result

    async def resume(self) -> None:
        """Listen again on the git forwarder's inherited socket (same port: ``origin`` is
        unchanged), when the hibernated runtime had one."""
        if self._forwarder_fd is not None and self._forwarder is None:
            forwarder = GitForwarder(
                self._bridge, self._token, tls=self._tls, inherited_fd=self._forwarder_fd
            )
            self._forwarder_fd = None
            await forwarder.start()
            self._forwarder = forwarder

    @property
    def state(self) -> BoundState | None:
        """What ``bind`` applied, for a runtime that hibernates."""
        if self._bound is None or self._result is None:
            return None
        return BoundState(self._bound[0], self._bound[1], self._result)

    @property
    def forwarder(self) -> GitForwarder | None:
        return self._forwarder

    async def bind(self, params: Mapping[str, object]) -> BindResult:
        """Apply the ``bind`` request ``params`` (see :class:`~.protocol.BindParams`)."""
        branch = require_str(params, "work_branch", allow_empty=False)
        remote_path = optional_str(params, "git_remote_path")
        await self._check(branch, remote_path)
        async with self._lock:
            return await self._bind(branch, remote_path)

    async def _bind(self, branch: str, remote_path: str | None) -> BindResult:
        if self._bound is not None and self._bound != (branch, remote_path):
            raise RpcFailure(
                "already_bound", f"this box is bound to the branch {self._bound[0]!r} already"
            )
        if self._result is not None:
            return self._result
        if not (self._repo_dir / ".git").is_dir():
            raise RpcFailure("not_ready", "the box has not cloned its repo yet; bind once booted")
        proxied = False
        if remote_path is not None:
            await self._point_origin(remote_path)
            proxied = True
        tracking = await self._checkout(branch)
        self._bound = (branch, remote_path)
        self._result = {"branch": branch, "tracking": tracking, "proxied": proxied}
        return self._result

    async def close(self) -> None:
        """Stop the git forwarder, if one was started."""
        if self._forwarder is not None:
            await self._forwarder.close()
            self._forwarder = None

    async def _check(self, branch: str, remote_path: str | None) -> None:
        if len(branch) > MAX_BRANCH_CHARS or branch.startswith("-"):
            raise RpcFailure("invalid_params", "'work_branch' is not a branch name")
        code, _ = await self._git(["check-ref-format", f"refs/heads/{branch}"], cwd=Path("/"))
        if code != 0:
            raise RpcFailure("invalid_params", f"'work_branch' is not a branch name: {branch!r}")
        if remote_path is not None and (
            len(remote_path) > MAX_REMOTE_PATH_CHARS or not remote_path.startswith(GIT_PATH_PREFIX)
        ):
            raise RpcFailure(
                "invalid_params", f"'git_remote_path' must start with {GIT_PATH_PREFIX}"
            )

    async def _point_origin(self, remote_path: str) -> None:
        if self._forwarder is None:
            forwarder = GitForwarder(self._bridge, self._token, tls=self._tls)
            try:
                await forwarder.start()
            except OSError as exc:
                raise RpcFailure("io_error", f"cannot start the git forwarder: {exc}") from exc
            self._forwarder = forwarder
        await self._must(
            ["remote", "set-url", "origin", self._forwarder.url(remote_path)],
            "pointing origin at the git proxy",
        )
        # Read once, set what differs: a box's clone has them already (``boot``), and each git
        # run is on a pooled box's claim path.
        code, listed = await self._git(["config", "--local", "--list"])
        current: dict[str, str] = {}
        if code == 0:
            for line in listed.splitlines():
                key, _, value = line.partition("=")
                current[key] = value
        for key, value in PROXY_CONFIG:
            if current.get(key.lower()) != value:
                await self._must(["config", key, value], f"setting {key}")

    async def _checkout(self, branch: str) -> bool:
        """Check out ``branch``; True when it tracks ``origin/<branch>``."""
        remote_ref, local_ref = f"refs/remotes/origin/{branch}", f"refs/heads/{branch}"
        code, listed = await self._git(
            ["for-each-ref", "--format=%(refname)", local_ref, remote_ref]
        )
        if code != 0:
            raise RpcFailure("git_failed", f"listing the branches failed (exit {code})")
        refs = set(listed.splitlines())
        tracking = remote_ref in refs
        if local_ref in refs:  # a restarted box reusing its checkout
            args = ["checkout", branch]
        elif tracking:  # a follow-up session continues the branch it pushed before
            args = ["checkout", "-b", branch, "--track", f"origin/{branch}"]
        else:
            args = ["checkout", "-b", branch]
        await self._must(args, f"checking out {branch}")
        return tracking

    async def _must(self, args: list[str], what: str) -> None:
        code, output = await self._git(args)
        if code != 0:
            detail = output.strip()[-MAX_MESSAGE_CHARS // 2 :]
            raise RpcFailure("git_failed", f"{what} failed (exit {code}): {detail}")

    async def _git(self, args: list[str], *, cwd: Path | None = None) -> tuple[int, str]:
        """(exit status, output) of git; a timeout counts as a failure."""
        chunks: list[bytes] = []

        async def feed(_stream: Stream, data: bytes) -> None:
            chunks.append(data)

        try:
            child = await Child.spawn(
                ["git", *args], cwd=cwd or self._repo_dir, env=self._env, merge_stderr=True
            )
        except OSError as exc:
            raise RpcFailure("io_error", f"cannot run git: {exc}") from exc
        code, timed_out = await child.run(feed, GIT_TIMEOUT_S)
        output = b"".join(chunks).decode("utf-8", errors="replace")
        return (-1 if timed_out else code), output
