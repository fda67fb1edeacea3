"""The git proxy: smart HTTP for sandboxes, with the credentials and the push rules outside them.

Served at ``{prefix}/{session}/{owner}/{repo}.git`` (``info/refs``, ``git-upload-pack``,
``git-receive-pack``). Every request is authorized by a :class:`GitProxyAuthority` from the
bearer token the sandbox's forwarder adds (or an HTTP Basic password); the authority answers with
the upstream to forward to and the session's :class:`~.push_rules.PushPolicy`.

Fetches are forwarded as they are. A push is read up to its pack
(:func:`.pktline.read_push_request`) and judged by the policy: a refused push never reaches the
upstream. An update the policy allows only as a fast-forward (a granted branch) is checked on the
pack first: the pack is kept in a temporary file, the grant's :class:`~.fast_forward.
FastForwardCheck` says which updates would rewind their branch, and a push with one is refused
like any other — the proxy reads the rest of the body and answers like receive-pack would, with
``ng <ref> <reason>`` per ref and a message on side-band 2, so git prints
``remote: openinspect: …`` and ``! [remote rejected] … (<reason>)`` and exits non-zero. An
accepted push is streamed on, its status report read as it streams back, and the authority hears
about every attempt (:meth:`GitProxyAuthority.pushed`).

Errors are plain text, which git shows (``remote: openinspect: …``) for a failed ``info/refs``.
Mounting::

    Starlette(routes=[..., *git_proxy_routes(authority)])
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from openinspect.errors import InvalidInput, OpenInspectError

from .fast_forward import FastForwardCheck
from .pktline import (
    FLUSH,
    MAX_PUSH_COMMANDS,
    MAX_PUSH_HEAD_BYTES,
    PushRequest,
    ReportStatusReader,
    encode_sideband,
    gunzip,
    prepend,
    read_push_request,
    report_status,
)
from .push_rules import (
    Decision,
    PushPolicy,
    RefUpdate,
    accepted,
    refusal_summary,
    refuse_rewinds,
)
from .upstream import (
    DEFAULT_MAX_BODY_BYTES,
    SERVICES,
    GitHeaders,
    Service,
    Upstream,
    UpstreamReply,
    result_type,
)

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 3600.0
"""A whole git operation (a large push over a slow link included)."""
MESSAGE_PREFIX = "openinspect: "
ABORTED = "aborted by the openinspect git proxy"
SPOOL_CHUNK_BYTES = 64 * 1024
"""The unpack status of a push that failed after the policy took it (git shows it)."""


@dataclass(frozen=True)
class ProxyGrant:
    """What an authorized request may do: forward to ``upstream``; push by ``policy``.
    ``fast_forward`` checks the updates the policy allows only as fast-forwards (without it,
    such an update is refused)."""

    session_id: str
    upstream: Upstream
    policy: PushPolicy
    fast_forward: FastForwardCheck | None = None


class GitProxyAuthority(Protocol):
    """Who may use the proxy and where it forwards: the control plane implements this."""

    async def authorize(
        self, session_id: str, owner: str, repo: str, credential: str | None, service: str
    ) -> ProxyGrant:
        """Check ``credential`` (the bearer token, None when absent) for this session and repo.

        ``service`` is ``git-upload-pack`` (fetch) or ``git-receive-pack`` (push). Raises
        ``AuthError`` (401) for a missing or wrong credential, ``ForbiddenError`` (403) when the
        credential is good but not for this, ``NotFoundError`` (404) for an unknown session or a
        repo that is not the session's. The message is shown to git's user.
        """
        ...

    async def pushed(
        self, grant: ProxyGrant, updates: list[RefUpdate], ok: bool, message: str
    ) -> None:
        """Called after every push attempt with its commands: ``ok`` when the upstream took
        every ref, False when the policy refused it (nothing reached the upstream) or the upstream
        failed or refused any ref; ``message`` says what happened, one line per problem.
        Branches the session now owns: ``grant.policy.new_branches(updates)`` when ``ok``.
        Exceptions are logged and do not change git's answer."""
        ...


@dataclass(frozen=True)
class GitProxyOptions:
    """Limits of the proxy: request body size (bytes, after decompression for a push), time per
    operation, and the size and command count of a push's command list."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_push_head_bytes: int = MAX_PUSH_HEAD_BYTES
    max_push_commands: int = MAX_PUSH_COMMANDS
    spool_dir: Path | None = None
    """Where the pack of a push checked for fast-forwards is kept meanwhile (None: the system's
    temporary directory)."""


def git_proxy_routes(
    authority: GitProxyAuthority, *, prefix: str = "/git", options: GitProxyOptions | None = None
) -> list[Route]:
    """The proxy's Starlette routes under ``prefix``."""
    proxy = GitProxy(authority, options or GitProxyOptions())
    base = prefix.rstrip("/") + "/{session}/{owner}/{repo}"
    return [
        Route(base + "/info/refs", proxy.info_refs, methods=["GET"]),
        Route(base + "/git-upload-pack", proxy.upload_pack, methods=["POST"]),
        Route(base + "/git-receive-pack", proxy.receive_pack, methods=["POST"]),
    ]


def _credential(request: Request) -> str | None:
    """The bearer token, or the password (else user name) of HTTP Basic auth."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or user or None
    return None


def _git_headers(request: Request, content_encoding: str | None) -> GitHeaders:
    headers = request.headers
    return GitHeaders(
        git_protocol=headers.get("git-protocol"),
        content_encoding=content_encoding,
        accept=headers.get("accept"),
        accept_encoding=headers.get("accept-encoding"),
        user_agent=headers.get("user-agent"),
    )


def _content_encoding(request: Request) -> str | None:
    value = request.headers.get("content-encoding", "").strip().lower()
    if value in ("", "identity"):
        return None
    if value in ("gzip", "x-gzip"):
        return "gzip"
    raise InvalidInput(f"Unsupported Content-Encoding {value!r}: expected gzip or none")


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = "".join(f"{MESSAGE_PREFIX}{line}\n" for line in message.splitlines() or [""])
    return PlainTextResponse(body, status_code=status, headers=headers)


class _Body:
    """The request body as it arrives, bounded; remembers why it failed, if it did."""

    def __init__(self, request: Request, max_bytes: int) -> None:
        self._request = request
        self._max_bytes = max_bytes
        self.error: BaseException | None = None
        self.finished = asyncio.Event()

    async def raw(self) -> AsyncIterator[bytes]:
        received = 0
        try:
            async for chunk in self._request.stream():
                received += len(chunk)
                if received > self._max_bytes:
                    raise InvalidInput(
                        f"The request body is larger than the proxy's limit of "
                        f"{self._max_bytes} bytes",
                        hint="push less at once",
                    )
                if chunk:
                    yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.finished.set()

    def decoded(self, encoding: str | None) -> AsyncIterator[bytes]:
        chunks = self.raw()
        return gunzip(chunks, max_bytes=self._max_bytes) if encoding == "gzip" else chunks


class GitProxy:
    """The three endpoints; see the module docstring."""

    def __init__(self, authority: GitProxyAuthority, options: GitProxyOptions) -> None:
        self._authority = authority
        self._options = options

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self._options.timeout_s

    async def _authorize(self, request: Request, service: Service) -> ProxyGrant:
        params = request.path_params
        repo = str(params["repo"]).removesuffix(".git")
        return await self._authority.authorize(
            str(params["session"]), str(params["owner"]), repo, _credential(request), service
        )

    async def info_refs(self, request: Request) -> Response:
        service = request.query_params.get("service")
        if service not in SERVICES:
            return _text(
                403,
                "this git proxy serves the smart HTTP protocol only "
                f"(info/refs?service=git-upload-pack or git-receive-pack), got service={service!r}",
            )
        known: Service = "git-upload-pack" if service == "git-upload-pack" else "git-receive-pack"
        deadline = self._deadline()

        async def start() -> Response:
            grant = await self._authorize(request, known)
            reply = await grant.upstream.info_refs(known, _git_headers(request, None))
            return _StreamedReply(reply, deadline, disconnect_after=_done_event())

        return await self._guarded(deadline, start, None)

    async def upload_pack(self, request: Request) -> Response:
        deadline = self._deadline()
        body = _Body(request, self._options.max_body_bytes)

        async def start() -> Response:
            grant = await self._authorize(request, "git-upload-pack")
            encoding = _content_encoding(request)
            reply = await grant.upstream.upload_pack(body.raw(), _git_headers(request, encoding))
            return _StreamedReply(reply, deadline, disconnect_after=body.finished)

        return await self._guarded(deadline, start, body)

    async def receive_pack(self, request: Request) -> Response:
        deadline = self._deadline()
        body = _Body(request, self._options.max_body_bytes)
        attempt: list[tuple[ProxyGrant, PushRequest]] = []
        cleanup: list[Path] = []

        async def start() -> Response:
            grant = await self._authorize(request, "git-receive-pack")
            chunks = body.decoded(_content_encoding(request))
            push = await read_push_request(
                chunks,
                max_head_bytes=self._options.max_push_head_bytes,
                max_commands=self._options.max_push_commands,
            )
            if not push.commands:  # git's auth probe before a large push: "0000"
                return Response(b"", media_type=result_type("git-receive-pack"))
            decisions = grant.policy.check(push.commands)
            if not accepted(decisions):
                return await self._refuse(grant, push, decisions, chunks)
            pack: AsyncIterator[bytes] = prepend(push.head + push.rest, chunks)
            if any(d.fast_forward for d in decisions):
                spooled = await _spool(push.rest, chunks, self._options.spool_dir)
                cleanup.append(spooled)
                rewinds = await _rewinds(grant, decisions, spooled)
                if rewinds:
                    _remove(cleanup)
                    refused = refuse_rewinds(decisions, rewinds)
                    return await self._refuse(grant, push, refused, _nothing())
                pack = prepend(push.head, _read_file(spooled))
            attempt.append((grant, push))
            reply = await grant.upstream.receive_pack(pack, _git_headers(request, None))
            report = ReportStatusReader(sideband=push.sideband_payload is not None)

            async def finished() -> None:
                _remove(cleanup)
                ok = report.landed(push.commands)
                await self._pushed(grant, push.commands, ok, report.summary(push.commands))

            return _StreamedReply(reply, deadline, on_chunk=report.feed, on_done=finished)

        try:
            return await self._guarded(deadline, start, body, reraise=True)
        except (OpenInspectError, TimeoutError, ClientDisconnect) as exc:
            _remove(cleanup)
            if not attempt:
                return self._failure(exc, body)
            # The policy took the push, then it failed: answer in receive-pack's own terms, so
            # git shows the reason rather than "RPC failed; HTTP 502".
            grant, push = attempt[0]
            reason = f"push failed: {_describe(body.error or exc)}"
            await self._pushed(grant, push.commands, False, reason)
            if not push.wants_report or isinstance(body.error or exc, ClientDisconnect):
                return self._failure(exc, body)
            return Response(
                _receive_pack_answer(
                    push, ABORTED, [(u.ref, reason) for u in push.commands], [reason]
                ),
                media_type=result_type("git-receive-pack"),
            )
        except BaseException:
            _remove(cleanup)
            raise

    async def _refuse(
        self,
        grant: ProxyGrant,
        push: PushRequest,
        decisions: Sequence[Decision],
        chunks: AsyncIterator[bytes],
    ) -> Response:
        """Answer a refused push like receive-pack would, without contacting the upstream."""
        # Read the pack to its end: git reports a connection cut mid-upload, not our reasons.
        with contextlib.suppress(OpenInspectError, ClientDisconnect):
            async for _chunk in chunks:
                pass
        message = refusal_summary(decisions)
        logger.info("session %s: %s", grant.session_id, message.replace("\n", "; "))
        await self._pushed(grant, push.commands, False, message)
        if not push.wants_report:
            return _text(403, message)
        return Response(
            _refusal_body(push, decisions, grant.policy),
            media_type=result_type("git-receive-pack"),
            headers={"Cache-Control": "no-cache"},
        )

    async def _pushed(
        self, grant: ProxyGrant, updates: list[RefUpdate], ok: bool, message: str
    ) -> None:
        try:
            await self._authority.pushed(grant, updates, ok, message)
        except Exception:
            logger.exception("recording a push of session %s failed", grant.session_id)

    async def _guarded(
        self,
        deadline: float,
        start: Callable[[], Awaitable[Response]],
        body: _Body | None,
        *,
        reraise: bool = False,
    ) -> Response:
        """Run ``start`` within the deadline, turning failures into text git can show."""
        try:
            async with asyncio.timeout_at(deadline):
                return await start()
        except (OpenInspectError, TimeoutError, ClientDisconnect) as exc:
            if reraise:
                raise
            return self._failure(exc, body)

    def _failure(self, exc: BaseException, body: _Body | None) -> Response:
        # The client's own body (too large, corrupt, cut off) explains an upstream failure best.
        cause = body.error if body is not None and body.error is not None else exc
        if isinstance(cause, TimeoutError):
            return _text(504, f"the git operation took longer than {self._options.timeout_s:g} s")
        if isinstance(cause, ClientDisconnect):
            return Response(status_code=400)  # nobody is listening any more
        if isinstance(cause, OpenInspectError):
            if cause.status >= 500:
                logger.warning("git proxy: %s", cause)
            challenge = {"WWW-Authenticate": 'Basic realm="openinspect"'}
            return _text(cause.status, str(cause), challenge if cause.status == 401 else None)
        return _text(500, _describe(cause))


async def _spool(first: bytes, chunks: AsyncIterator[bytes], spool_dir: Path | None) -> Path:
    """The rest of a push (its pack) in a temporary file, as it arrives (the body's own limit
    bounds it). The caller removes the file."""
    if spool_dir is not None:
        spool_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="push-", suffix=".pack", dir=spool_dir)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            if first:
                out.write(first)
            async for chunk in chunks:
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(SPOOL_CHUNK_BYTES):
            yield chunk


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover  (makes this an async generator)


def _remove(paths: list[Path]) -> None:
    while paths:
        paths.pop().unlink(missing_ok=True)


async def _rewinds(grant: ProxyGrant, decisions: Sequence[Decision], pack: Path) -> set[str]:
    """The refs of the fast-forward-only updates that are not fast-forwards (all of them
    without a check to ask)."""
    checked = [d.update for d in decisions if d.fast_forward]
    if grant.fast_forward is None:
        return {u.ref for u in checked}
    return await grant.fast_forward.rewinds(checked, pack)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ClientDisconnect):
        return "the client went away"
    return str(exc) or type(exc).__name__


def _refusal_body(push: PushRequest, decisions: Sequence[Decision], policy: PushPolicy) -> bytes:
    """receive-pack's answer to a refused push: every ref refused, the reasons on band 2."""
    lines = ["push refused; nothing was pushed:"]
    lines += [f"  {d.update.ref}: {d.reason}" for d in decisions]
    lines.append(policy.allowed_summary)
    return _receive_pack_answer(push, "ok", [(d.update.ref, d.reason) for d in decisions], lines)


def _receive_pack_answer(
    push: PushRequest, unpack: str, refused: Sequence[tuple[str, str]], lines: Sequence[str]
) -> bytes:
    """A report-status (``unpack``, ``ng <ref> <reason>`` per ref), with ``lines`` on side-band 2
    when the client negotiated side-band (git prints them as ``remote: openinspect: …``)."""
    report = report_status(unpack, refused)
    payload = push.sideband_payload
    if payload is None:
        return report
    text = "".join(f"{MESSAGE_PREFIX}{line}\n" for line in lines).encode()
    return (
        encode_sideband(2, text, max_payload=payload)
        + encode_sideband(1, report, max_payload=payload)
        + FLUSH
    )


def _done_event() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


class _StreamedReply(Response):
    """Streams an upstream's answer to the client and always closes it.

    With ``disconnect_after`` (set once the request body has been read), a client that goes
    away stops the upstream early. ``on_chunk`` sees every chunk; ``on_done`` runs last, however
    the stream ended. A stream that fails midway is left incomplete, so the client sees a broken
    transfer rather than a short answer that looks whole.
    """

    def __init__(
        self,
        reply: UpstreamReply,
        deadline: float,
        *,
        on_chunk: Callable[[bytes], None] | None = None,
        on_done: Callable[[], Awaitable[None]] | None = None,
        disconnect_after: asyncio.Event | None = None,
    ) -> None:
        self.status_code = reply.status
        self.background = None
        self.init_headers(reply.headers)
        self._reply = reply
        self._deadline = deadline
        self._on_chunk = on_chunk
        self._on_done = on_done
        self._disconnect_after = disconnect_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = asyncio.create_task(self._stream(send))
        watcher = (
            asyncio.create_task(self._watch(receive))
            if self._disconnect_after is not None
            else None
        )
        try:
            waiting = {stream, watcher} if watcher is not None else {stream}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if stream not in done:
                stream.cancel()
            await asyncio.gather(stream, return_exceptions=True)
        finally:
            for task in (stream, watcher):
                if task is not None and not task.done():
                    task.cancel()
            await asyncio.gather(stream, *([watcher] if watcher else []), return_exceptions=True)
            await self._reply.aclose()
            await self._finish()

    async def _finish(self) -> None:
        """Run ``on_done`` once, however the stream ended."""
        on_done, self._on_done = self._on_done, None
        if on_done is not None:
            await on_done()

    async def _stream(self, send: Send) -> None:
        try:
            async with asyncio.timeout_at(self._deadline):
                await send(
                    {
                        "type": "http.response.start",
                        "status": self.status_code,
                        "headers": self.raw_headers,
                    }
                )
                async for chunk in self._reply.body:
                    if self._on_chunk is not None:
                        self._on_chunk(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                # Hold the end of the answer until ``on_done`` ran: git exits when the answer
                # ends, and whoever waits for git (the post-prompt push) must find the push's
                # events already recorded.
                await self._finish()
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            logger.warning("git proxy: an answer was cut off at the operation's time limit")
        except (OpenInspectError, OSError) as exc:
            logger.warning("git proxy: an answer broke off: %s", exc)

    async def _watch(self, receive: Receive) -> None:
        assert self._disconnect_after is not None
        await self._disconnect_after.wait()
        while (await receive())["type"] != "http.disconnect":
            pass
