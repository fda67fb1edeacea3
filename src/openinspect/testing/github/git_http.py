"""Smart-HTTP git at ``/{owner}/{repo}.git/...`` through ``git http-backend`` (CGI).

Authentication is GitHub's: HTTP Basic with ``x-access-token`` and an installation token (fetch
and push on the token's repositories), or any user name and a user token (by collaborator
permission); public repositories fetch anonymously. Refusals use GitHub's statuses: 401 with
``WWW-Authenticate: Basic realm="GitHub"`` for missing or bad credentials, 404 for a repository
the identity cannot see, 403 for a push without write access.

The request body is streamed into the CGI and its output streamed back, so packs of any size
never sit in memory. This is a raw ASGI app (not a Starlette response) so that nothing else
reads the request's messages while the body is still being fed to git.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import re
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

from openinspect.testing.github import gitops
from openinspect.testing.github.auth import git_identity
from openinspect.testing.github.core import Core
from openinspect.testing.github.records import LEVELS, Level, RepoRec
from openinspect.testing.github.state import ApiError, Identity

CHUNK_BYTES = 64 * 1024
SERVICES = ("git-upload-pack", "git-receive-pack")
_PULL_PAGE_RE = re.compile(r"^pull/(\d+)/?$")
_BAD_CREDENTIALS = (
    "Invalid username or token. Password authentication is not supported for Git operations.\n"
)


async def _text(
    send: Send, status: int, text: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": text.encode()})


async def _unauthorized(send: Send, text: str) -> None:
    await _text(send, 401, text, ((b"www-authenticate", b'Basic realm="GitHub"'),))


class GitHttp:
    """The ASGI app behind ``/{owner}/{repo}/{rest:path}``: git services, plus a tiny PR page
    so that ``html_url`` links open something."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._push_locks: dict[str, asyncio.Lock] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = scope["path_params"]
        owner, name, rest = params["owner"], params["repo"], params["rest"]
        if rest in ("info/refs", *SERVICES):
            await self._git(scope, receive, send, owner, name, rest)
            return
        match = _PULL_PAGE_RE.match(rest)
        repo = self.core.state.repo(owner, name)
        if match and repo is not None and int(match[1]) in repo.pulls:
            pull = repo.pulls[int(match[1])]
            status = "merged" if pull.merged else pull.state
            page = (
                f"<!doctype html><title>{html.escape(pull.title)}</title>"
                f"<h1>{html.escape(pull.title)} #{pull.number}</h1><p>{status}: "
                f"{html.escape(pull.head)} → {html.escape(pull.base)}</p>"
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/html; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": page.encode()})
            return
        await _text(send, 404, "Not Found\n")

    async def _git(
        self, scope: Scope, receive: Receive, send: Send, owner: str, name: str, rest: str
    ) -> None:
        method = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        service = parse_qs(query).get("service", [""])[0] if rest == "info/refs" else rest
        if service not in SERVICES or method != ("GET" if rest == "info/refs" else "POST"):
            await _text(send, 403, "Only smart HTTP git is served here.\n")
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            identity = git_identity(self.core.state, headers.get("authorization"))
        except ApiError:
            await _unauthorized(send, _BAD_CREDENTIALS)
            return
        state = self.core.state
        repo = state.repo(owner, name)
        need: Level = "push" if service == "git-receive-pack" else "pull"
        level = state.level(identity, repo) if repo is not None else "none"
        if repo is None or LEVELS[level] < LEVELS[need]:
            if identity.kind == "anonymous":
                await _unauthorized(send, "Authentication required.\n")
            elif repo is None or level == "none":
                await _text(send, 404, "Repository not found.\n")
            else:
                who = identity.login or "anonymous"
                await _text(send, 403, f"Permission to {repo.full_name}.git denied to {who}.\n")
            return
        if service == "git-receive-pack" and rest == "git-receive-pack":
            lock = self._push_locks.setdefault(repo.key, asyncio.Lock())
            async with lock:
                path = state.bare_path(repo)
                before = await asyncio.to_thread(gitops.refs, path)
                await self._cgi(scope, receive, send, repo, rest, query, headers, identity)
                after = await asyncio.to_thread(gitops.refs, path)
            await asyncio.to_thread(self._after_push, repo, identity, before, after)
            return
        await self._cgi(scope, receive, send, repo, rest, query, headers, identity)

    async def _cgi(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        repo: RepoRec,
        rest: str,
        query: str,
        headers: dict[str, str],
        identity: Identity,
    ) -> None:
        path = self.core.state.bare_path(repo)
        root = path.parent.parent
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_PROJECT_ROOT": str(root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": scope["method"],
            "PATH_INFO": f"/{path.parent.name}/{path.name}/{rest}",
            "QUERY_STRING": query,
            "CONTENT_TYPE": headers.get("content-type", ""),
            "REMOTE_USER": identity.login or "",
            "REMOTE_ADDR": (scope.get("client") or ("127.0.0.1", 0))[0],
            "SERVER_PROTOCOL": "HTTP/1.1",
            "GATEWAY_INTERFACE": "CGI/1.1",
        }
        if "content-length" in headers:
            env["CONTENT_LENGTH"] = headers["content-length"]
        if "content-encoding" in headers:
            env["HTTP_CONTENT_ENCODING"] = headers["content-encoding"]
        if "git-protocol" in headers:
            env["GIT_PROTOCOL"] = headers["git-protocol"]
        proc = await asyncio.create_subprocess_exec(
            "git",
            "http-backend",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr

        async def feed() -> None:
            try:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        with contextlib.suppress(ProcessLookupError):
                            proc.kill()
                        return
                    chunk = message.get("body", b"")
                    if chunk:
                        stdin.write(chunk)
                        await stdin.drain()
                    if not message.get("more_body", False):
                        return
            except (BrokenPipeError, ConnectionResetError):
                return  # git stopped reading (it failed); its output says why
            finally:
                stdin.close()

        feeder = asyncio.create_task(feed())
        errors = asyncio.create_task(stderr.read())
        try:
            status, out_headers = 200, []
            while line := await stdout.readline():
                line = line.rstrip(b"\r\n")
                if not line:
                    break
                key, _, value = line.partition(b":")
                if key.strip().lower() == b"status":
                    status = int(value.split()[0])
                else:
                    out_headers.append((key.strip().lower(), value.strip()))
            else:
                await feeder
                await proc.wait()
                message = (await errors).decode(errors="replace").strip()
                await _text(send, 500, f"git http-backend failed: {message}\n")
                return
            await send({"type": "http.response.start", "status": status, "headers": out_headers})
            while chunk := await stdout.read(CHUNK_BYTES):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await feeder
            await proc.wait()
            await send({"type": "http.response.body", "body": b""})
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            feeder.cancel()
            errors.cancel()

    def _after_push(
        self, repo: RepoRec, identity: Identity, before: dict[str, str], after: dict[str, str]
    ) -> None:
        changed = [
            (ref, before.get(ref, gitops.EMPTY_SHA), after.get(ref, gitops.EMPTY_SHA))
            for ref in sorted(set(before) | set(after))
            if before.get(ref) != after.get(ref)
        ]
        sender = self.core.views.login(identity.login or "ghost", identity.kind == "installation")
        self.core.announce_push(repo, sender, changed, sync=False)
