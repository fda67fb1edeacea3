"""Helpers for git proxy tests: a real uvicorn server in the test's loop, the git CLI with a
clean configuration, a fake authority, and ``git http-backend`` as an HTTP upstream."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from openinspect.errors import AuthError, NotFoundError
from openinspect.scm.fast_forward import FastForwardCheck
from openinspect.scm.gitproxy import ProxyGrant
from openinspect.scm.push_rules import PushPolicy, RefUpdate
from openinspect.scm.upstream import Upstream

TOKEN = "sandbox-token-0123456789"
SESSION = "ses1"
SESSION_BRANCH = f"openinspect/{SESSION}"
OWNER, REPO = "acme", "widgets"


class _QuietServer(uvicorn.Server):
    """Leaves pytest's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, *, uds: Path | None = None, **config: Any) -> AsyncIterator[str]:
    """Serve ``app`` in this event loop; yields ``http://127.0.0.1:<port>`` (or the socket path).

    The socket is bound and listening before the server task starts, so the first connection
    waits in the backlog instead of racing the start-up.
    """
    if uds is None:
        sock = socket.create_server(("127.0.0.1", 0))
        where = f"http://127.0.0.1:{sock.getsockname()[1]}"
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(uds))
        sock.listen(128)
        where = str(uds)
    server = _QuietServer(
        uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=5,
            **config,
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield where
    finally:
        server.should_exit = True
        await task
        sock.close()


def git_env(home: Path) -> dict[str, str]:
    """git without the host's or the user's configuration, and never prompting."""
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }


@dataclass
class GitResult:
    code: int
    stdout: str
    stderr: str


@dataclass
class Git:
    """The git CLI for one test (``home`` isolates its config)."""

    home: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    async def run(self, *args: str, cwd: Path, check: bool = True) -> GitResult:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=cwd,
            env={**git_env(self.home), **self.extra_env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        result = GitResult(proc.returncode or 0, out.decode(), err.decode())
        if check and result.code != 0:
            raise AssertionError(f"git {' '.join(args)} failed ({result.code}):\n{result.stderr}")
        return result

    async def out(self, *args: str, cwd: Path) -> str:
        return (await self.run(*args, cwd=cwd)).stdout.strip()


async def make_upstream(git: Git, root: Path) -> Path:
    """A bare ``acme/widgets.git`` with ``main``, the tag ``v1`` and ``openinspect/existing``
    (a branch under the prefix that the session did not create)."""
    bare = root / OWNER / f"{REPO}.git"
    bare.parent.mkdir(parents=True)
    await git.run("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=root)
    seed = root / "seed"
    await git.run("init", "--quiet", "--initial-branch=main", str(seed), cwd=root)
    (seed / "README.md").write_text("# widgets\n")
    await git.run("add", ".", cwd=seed)
    await git.run("commit", "--quiet", "-m", "first", cwd=seed)
    await git.run("tag", "v1", cwd=seed)
    await git.run("push", "--quiet", str(bare), "main", "v1", cwd=seed)
    await git.run("push", "--quiet", str(bare), "main:openinspect/existing", cwd=seed)
    return bare


async def commit(git: Git, repo: Path, name: str, content: str = "") -> str:
    (repo / name).write_text(content or f"{name}\n")
    await git.run("add", name, cwd=repo)
    await git.run("commit", "--quiet", "-m", f"add {name}", cwd=repo)
    return await git.out("rev-parse", "HEAD", cwd=repo)


@dataclass
class Pushed:
    session_id: str
    updates: list[RefUpdate]
    ok: bool
    message: str


class FakeAuthority:
    """One session (:data:`SESSION`) with one repo (``acme/widgets``) and one valid token."""

    def __init__(self, upstream: Upstream, *, base_branch: str = "main") -> None:
        self.upstream = upstream
        self.base_branch = base_branch
        self.granted: str | None = None
        """A branch the session was given instead of its own (fast-forward only)."""
        self.fast_forward: FastForwardCheck | None = None
        self.created: set[str] = set()
        self.pushes: list[Pushed] = []
        self.credentials: list[str | None] = []

    async def authorize(
        self, session_id: str, owner: str, repo: str, credential: str | None, service: str
    ) -> ProxyGrant:
        self.credentials.append(credential)
        if credential is None:
            raise AuthError("A sandbox token is required", hint="send Authorization: Bearer …")
        if credential != TOKEN:
            raise AuthError("The sandbox token is not valid for this session")
        if session_id != SESSION:
            raise NotFoundError(f"No session {session_id}")
        if (owner, repo) != (OWNER, REPO):
            raise NotFoundError(f"{owner}/{repo} is not a repository of session {session_id}")
        policy = PushPolicy(
            session_branch=self.granted or SESSION_BRANCH,
            base_branch=self.base_branch,
            created_branches=frozenset(self.created),
            granted=self.granted is not None,
        )
        return ProxyGrant(session_id, self.upstream, policy, self.fast_forward)

    async def pushed(
        self, grant: ProxyGrant, updates: list[RefUpdate], ok: bool, message: str
    ) -> None:
        self.pushes.append(Pushed(grant.session_id, updates, ok, message))
        if ok:
            self.created |= grant.policy.new_branches(updates)


def basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    user, _, password = base64.b64decode(value).decode().partition(":")
    return user, password


@dataclass
class HttpBackend:
    """``git http-backend`` (CGI) behind Starlette: a stand-in for GitHub's git endpoint.

    Requests must carry HTTP Basic auth whose password is in ``valid``; every password seen is
    appended to ``seen``.
    """

    root: Path
    valid: set[str]
    seen: list[str | None] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=["GET", "POST"])])

    async def handle(self, request: Request) -> Response:
        credentials = basic_credentials(request)
        self.seen.append(credentials[1] if credentials else None)
        if credentials is None or credentials[1] not in self.valid:
            return PlainTextResponse(
                "Invalid username or password.\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="backend"'},
            )
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": request.method,
            "PATH_INFO": request.url.path,
            "QUERY_STRING": request.url.query,
            "CONTENT_TYPE": request.headers.get("content-type", ""),
            "REMOTE_USER": credentials[0],
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.root),
        }
        for header in ("content-encoding", "git-protocol"):
            if header in request.headers:
                env["HTTP_" + header.upper().replace("-", "_")] = request.headers[header]
        proc = await asyncio.create_subprocess_exec(
            "git",
            "http-backend",
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            async for chunk in request.stream():
                proc.stdin.write(chunk)
                await proc.stdin.drain()
            proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the backend stopped reading (it answered early): its answer still follows
        raw_head = await proc.stdout.readuntil(b"\r\n\r\n")
        status, headers = 200, {}
        for line in raw_head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers[name] = value.strip()
        stdout = proc.stdout

        async def body() -> AsyncIterator[bytes]:
            while chunk := await stdout.read(65536):
                yield chunk
            await proc.wait()

        return StreamingResponse(body(), status_code=status, headers=headers)


@dataclass
class AsgiTap:
    """ASGI middleware that counts the request body bytes the app has taken so far and records
    each request's method, path and headers."""

    app: ASGIApp
    received: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    sent_chunks: list[int] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests.append(
            {
                "method": scope["method"],
                "path": scope["path"],
                "headers": {k.decode().lower(): v.decode() for k, v in scope["headers"]},
            }
        )

        async def counting_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
            return message

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                self.sent_chunks.append(len(message["body"]))
            await send(message)

        await self.app(scope, counting_receive, counting_send)
