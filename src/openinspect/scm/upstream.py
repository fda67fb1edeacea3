"""Where the git proxy forwards to: a local bare repository, or a smart-HTTP server with
credentials the sandbox never sees.

Both stream in both directions: the request body goes up as it arrives and the answer comes back
as the upstream produces it; neither holds a pack in memory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

from openinspect.errors import (
    GitError,
    OpenInspectError,
    ScmAuthFailed,
    ScmError,
    ScmNotFound,
    ScmRateLimited,
    ScmUnavailable,
)

from .pktline import FLUSH, encode, gunzip

logger = logging.getLogger(__name__)

Service = Literal["git-upload-pack", "git-receive-pack"]
SERVICES: tuple[Service, ...] = ("git-upload-pack", "git-receive-pack")
CredentialSource = Callable[[], Awaitable[tuple[str, str] | None]]
"""Returns (username, password) for HTTP Basic auth, or None; called once per request."""

CHUNK_BYTES = 64 * 1024
MAX_STDERR_BYTES = 16 * 1024
MAX_ERROR_BODY_BYTES = 4 * 1024
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024 * 1024
DEFAULT_HTTP_TIMEOUT = httpx.Timeout(connect=30.0, read=600.0, write=600.0, pool=30.0)
_GIT_PROTOCOL = re.compile(r"[A-Za-z0-9=:._,-]{1,256}")
_ENV_KEPT = ("PATH", "HOME", "TMPDIR")


def advertisement_type(service: Service) -> str:
    return f"application/x-{service}-advertisement"


def result_type(service: Service) -> str:
    return f"application/x-{service}-result"


def request_type(service: Service) -> str:
    return f"application/x-{service}-request"


@dataclass(frozen=True)
class GitHeaders:
    """The client's request headers that matter upstream (None when absent).

    ``content_encoding`` describes the body handed to the upstream (``gzip`` or None).
    """

    git_protocol: str | None = None
    content_encoding: str | None = None
    accept: str | None = None
    accept_encoding: str | None = None
    user_agent: str | None = None

    @property
    def protocol_v2(self) -> bool:
        return self.git_protocol is not None and "version=2" in self.git_protocol.split(":")

    @property
    def safe_git_protocol(self) -> str | None:
        """``Git-Protocol`` if it looks like one (it ends up in an environment variable)."""
        value = self.git_protocol
        return value if value is not None and _GIT_PROTOCOL.fullmatch(value) else None


@dataclass
class UpstreamReply:
    """An upstream's answer, streaming: pass ``headers`` on, iterate ``body`` once, then always
    ``await aclose()`` (idempotent; before the end of ``body`` it aborts the operation)."""

    status: int
    headers: dict[str, str]
    body: AsyncIterator[bytes]
    _close: Callable[[], Awaitable[None]] = field(repr=False)

    async def aclose(self) -> None:
        await self._close()


class Upstream(Protocol):
    """The real repository behind the proxy, speaking git's stateless (smart-HTTP) protocol.

    Each method returns as soon as the answer starts (status and headers known) and raises an
    :class:`~openinspect.errors.OpenInspectError` (``GitError``, ``ScmError`` and subclasses)
    when the upstream fails before that; an error while the body streams ends the body with
    such an error. Exceptions raised by the request ``body`` iterator (a body over the limit,
    a client that went away) propagate. Upstreams set no overall deadline: the proxy bounds each
    operation and closes the reply when it expires.
    """

    async def info_refs(self, service: Service, headers: GitHeaders) -> UpstreamReply:
        """``GET info/refs?service=…``: the ref advertisement, ``# service=`` line included."""
        ...

    async def upload_pack(self, body: AsyncIterator[bytes], headers: GitHeaders) -> UpstreamReply:
        """``POST git-upload-pack`` (fetch); ``body`` may be gzip (``headers.content_encoding``)."""
        ...

    async def receive_pack(self, body: AsyncIterator[bytes], headers: GitHeaders) -> UpstreamReply:
        """``POST git-receive-pack`` (push); ``body`` is never compressed."""
        ...


def _git_env(headers: GitHeaders) -> dict[str, str]:
    """A clean environment for the server-side git: no GIT_* of the host's, C locale."""
    env = {name: os.environ[name] for name in _ENV_KEPT if name in os.environ}
    env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0")
    if (protocol := headers.safe_git_protocol) is not None:
        env["GIT_PROTOCOL"] = protocol
    return env


class LocalUpstream:
    """A bare repository on this host, served by ``git upload-pack``/``receive-pack
    --stateless-rpc`` (what ``git http-backend`` runs). The repository's own hooks and config
    apply; it must be trusted (the control plane's, never a sandbox's)."""

    def __init__(
        self, path: Path | str, *, git: str = "git", max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ) -> None:
        self.path = Path(path)
        self._git = git
        self._max_body_bytes = max_body_bytes

    async def info_refs(self, service: Service, headers: GitHeaders) -> UpstreamReply:
        # http-backend omits the service line for protocol v2, whose answer starts "version 2".
        prelude = b"" if headers.protocol_v2 else encode(f"# service={service}\n") + FLUSH
        return await self._run(
            service, ["--advertise-refs"], None, headers, advertisement_type(service), prelude
        )

    async def upload_pack(self, body: AsyncIterator[bytes], headers: GitHeaders) -> UpstreamReply:
        if headers.content_encoding in ("gzip", "x-gzip"):
            body = gunzip(body, max_bytes=self._max_body_bytes)
        return await self._run(
            "git-upload-pack", [], body, headers, result_type("git-upload-pack"), b""
        )

    async def receive_pack(self, body: AsyncIterator[bytes], headers: GitHeaders) -> UpstreamReply:
        return await self._run(
            "git-receive-pack", [], body, headers, result_type("git-receive-pack"), b""
        )

    async def _run(
        self,
        service: Service,
        args: list[str],
        body: AsyncIterator[bytes] | None,
        headers: GitHeaders,
        content_type: str,
        prelude: bytes,
    ) -> UpstreamReply:
        argv = [self._git, service.removeprefix("git-"), "--stateless-rpc", *args, str(self.path)]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if body is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=_git_env(headers),
                start_new_session=True,  # its helpers (index-pack, pack-objects) die with it
            )
        except OSError as exc:
            raise GitError(f"cannot run {self._git} {service}: {exc}") from exc
        run = _GitProcess(proc, service, body)
        try:
            first = await run.first_output()
            if not first:
                await run.finish()
        except BaseException:
            await run.close()
            raise
        reply_headers = {"Content-Type": content_type, "Cache-Control": "no-cache"}
        return UpstreamReply(200, reply_headers, run.stream(prelude + first), run.close)


class _GitProcess:
    """One ``git … --stateless-rpc`` run: stdin fed from the request, stdout streamed back."""

    def __init__(
        self, proc: asyncio.subprocess.Process, service: Service, body: AsyncIterator[bytes] | None
    ) -> None:
        self._proc = proc
        self._service = service
        self._stderr = bytearray()
        self._stderr_task = asyncio.create_task(self._collect_stderr())
        self._pump: asyncio.Task[None] | None = (
            asyncio.create_task(self._feed(body)) if body is not None else None
        )
        self._closed = False

    async def _collect_stderr(self) -> None:
        assert self._proc.stderr is not None
        while chunk := await self._proc.stderr.read(CHUNK_BYTES):
            room = MAX_STDERR_BYTES - len(self._stderr)
            if room > 0:
                self._stderr += chunk[:room]

    async def _feed(self, body: AsyncIterator[bytes]) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            async for chunk in body:
                stdin.write(chunk)
                await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return  # git stopped reading (it failed, or needs no more); its output says why
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _raise_if_feed_failed(self) -> None:
        if self._pump is not None and self._pump.done() and not self._pump.cancelled():
            exc = self._pump.exception()
            if exc is not None:
                raise exc

    async def first_output(self) -> bytes:
        """The first bytes git writes (b"" if it writes none), or the request body's error."""
        assert self._proc.stdout is not None
        read = asyncio.ensure_future(self._proc.stdout.read(CHUNK_BYTES))
        waiting: set[asyncio.Future[Any]] = {read}
        if self._pump is not None:
            waiting.add(self._pump)
        try:
            while True:
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if self._pump is not None and self._pump in done:
                    self._raise_if_feed_failed()
                    waiting.discard(self._pump)
                if read in done:
                    return read.result()
        finally:
            if not read.done():
                read.cancel()

    async def finish(self) -> None:
        """Wait for git to exit after its output ended; raise ``GitError`` if it failed."""
        if self._pump is not None:
            await asyncio.wait({self._pump})
            self._raise_if_feed_failed()
        code = await self._proc.wait()
        await asyncio.wait({self._stderr_task})
        if code != 0:
            detail = self._stderr.decode(errors="replace").strip() or f"exit status {code}"
            raise GitError(f"git {self._service} failed: {detail}")

    async def stream(self, first: bytes) -> AsyncIterator[bytes]:
        assert self._proc.stdout is not None
        if first:
            yield first
        while chunk := await self._proc.stdout.read(CHUNK_BYTES):
            yield chunk
        try:
            await self.finish()
        except GitError as exc:  # its output already went out; git on the client reads it
            logger.warning("%s", exc)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        await self._proc.wait()
        tasks = [t for t in (self._pump, self._stderr_task) if t is not None]
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class HttpUpstream:
    """A smart-HTTP git server (GitHub, GitHub Enterprise, anything ``git http-backend``).

    ``base_url`` is the repository URL (``https://github.com/octo/widgets.git``). ``credential``
    is awaited once per request, so a token that expires is replaced without the proxy noticing.
    Pass ``client`` to share one connection pool (the caller closes it); otherwise each request
    gets its own client that ignores proxy variables and ``.netrc``. Redirects are not followed.
    """

    def __init__(
        self,
        base_url: str,
        credential: CredentialSource | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_HTTP_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credential = credential
        self._client = client
        self._timeout = timeout

    async def info_refs(self, service: Service, headers: GitHeaders) -> UpstreamReply:
        return await self._send(
            "GET", f"{self.base_url}/info/refs", service, headers, None, advertisement_type(service)
        )

    async def upload_pack(self, body: AsyncIterator[bytes], headers: GitHeaders) -> UpstreamReply:
        service: Service = "git-upload-pack"
        url = f"{self.base_url}/{service}"
        return await self._send("POST", url, service, headers, body, result_type(service))

    async def receive_pack(self, body: AsyncIterator[bytes], headers: GitHeaders) -> UpstreamReply:
        service: Service = "git-receive-pack"
        # The proxy reads the report as it streams by: ask for it uncompressed (it is tiny).
        headers = GitHeaders(
            git_protocol=headers.git_protocol,
            accept=headers.accept,
            accept_encoding="identity",
            user_agent=headers.user_agent,
        )
        url = f"{self.base_url}/{service}"
        return await self._send("POST", url, service, headers, body, result_type(service))

    async def _request_headers(
        self, service: Service, headers: GitHeaders, has_body: bool
    ) -> dict[str, str]:
        out = {
            "User-Agent": headers.user_agent or "git/openinspect-proxy",
            "Accept": headers.accept or "*/*",
            # Only what the client can decode: the answer is passed on as it comes.
            "Accept-Encoding": headers.accept_encoding or "identity",
            "Pragma": "no-cache",
        }
        if headers.git_protocol is not None:
            out["Git-Protocol"] = headers.git_protocol
        if has_body:
            out["Content-Type"] = request_type(service)
            if headers.content_encoding is not None:
                out["Content-Encoding"] = headers.content_encoding
        if self._credential is not None and (pair := await self._credential()) is not None:
            out["Authorization"] = _basic(*pair)
        return out

    async def _send(
        self,
        method: str,
        url: str,
        service: Service,
        headers: GitHeaders,
        body: AsyncIterator[bytes] | None,
        expected_type: str,
    ) -> UpstreamReply:
        own_client = self._client is None
        client = self._client or httpx.AsyncClient(
            timeout=self._timeout, follow_redirects=False, trust_env=False
        )
        response: httpx.Response | None = None
        try:
            request = client.build_request(
                method,
                url,
                params={"service": service} if method == "GET" else None,
                headers=await self._request_headers(service, headers, body is not None),
                content=body,
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise ScmUnavailable(f"The upstream git server timed out ({url}): {exc}") from exc
            except httpx.TransportError as exc:
                raise ScmUnavailable(
                    f"Cannot reach the upstream git server ({url}): {exc}"
                ) from exc
            await _check(response, url, expected_type)
        except BaseException:
            if response is not None:
                await response.aclose()
            if own_client:
                await client.aclose()
            raise

        sent = response

        async def close() -> None:
            await sent.aclose()
            if own_client:
                await client.aclose()

        passed = {
            name: sent.headers[name]
            for name in ("Content-Type", "Content-Encoding", "Cache-Control")
            if name in sent.headers
        }
        return UpstreamReply(sent.status_code, passed, _relay(sent, url), close)


async def _relay(response: httpx.Response, url: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_raw(CHUNK_BYTES):
            yield chunk
    except httpx.TransportError as exc:
        raise ScmUnavailable(
            f"The upstream git server broke off its answer ({url}): {exc}"
        ) from exc


async def _check(response: httpx.Response, url: str, expected_type: str) -> None:
    """Raise the error that tells git's user what went wrong upstream, if anything did."""
    status = response.status_code
    if status == 200:
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type == expected_type:
            return
        raise ScmError(
            f"The upstream at {url} answered {content_type or 'without a content type'} "
            f"instead of {expected_type}: it is not a smart-HTTP git server"
        )
    detail = await _error_text(response)
    said = f": {detail}" if detail else ""
    error: OpenInspectError
    if status in (401, 403):
        error = ScmAuthFailed(
            f"The upstream git server refused the proxy's credentials (HTTP {status}){said}",
            hint="check the SCM credentials of this installation (app installation, token)",
        )
    elif status == 404:
        error = ScmNotFound(
            f"The upstream repository was not found (HTTP 404){said}",
            hint="the repository may not exist, or the proxy's credentials cannot see it",
        )
    elif status == 429:
        error = ScmRateLimited(f"The upstream git server is rate limiting (HTTP 429){said}")
    elif status >= 500:
        error = ScmUnavailable(f"The upstream git server failed (HTTP {status}){said}")
    else:
        error = ScmError(f"The upstream git server answered HTTP {status}{said}")
    raise error


async def _error_text(response: httpx.Response) -> str:
    """The start of an error body, as one line of text (bodies are short text or HTML)."""
    data = b""
    with contextlib.suppress(httpx.HTTPError):
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) >= MAX_ERROR_BODY_BYTES:
                break
    text = data[:MAX_ERROR_BODY_BYTES].decode(errors="replace")
    return " ".join(text.split())[:500]
