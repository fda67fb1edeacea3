"""The egress proxy: HTTP ``CONNECT`` tunnels and plain absolute-URI requests, allow-listed.

The box's runtime listens on a loopback port (its ``HTTP_PROXY``) and carries each connection
made to it, byte for byte, over one WebSocket to ``/sandbox/egress`` on the bridge
(:mod:`openinspect.runtime.egressforward`): binary messages are the bytes, an empty one means
the box has finished sending (a half-close). Everything a proxy decides is decided here, in the
control plane, where the box cannot change it:

1. The handshake carries the sandbox's token; an unknown or lost sandbox is refused before the
   upgrade (HTTP 403), like the bridge. The token's sandbox, its session and the session's repo
   give the allow-list (:class:`EgressAuthority`): a box can use only its own repo's entries.
2. The request head (at most ``max_head_bytes``, within ``head_timeout_s``) is
   ``CONNECT host:port`` or ``METHOD http://host[:port]/path``; anything else is a 400.
3. The host and port are judged by the allow-list (:mod:`.allowlist`); the host is resolved
   once, and an address that is not public (:mod:`.addresses`) is refused unless an exact entry
   names the host. The proxy connects to the addresses it checked, never to the name again.
4. ``CONNECT`` answers ``200`` and copies bytes both ways (TLS stays end to end: the proxy
   neither sees nor adds anything). A plain request is sent on in origin form with
   ``Connection: close`` and without the ``Proxy-*`` headers: one request per connection.
   Nothing is added: no credentials, no forwarding headers.

Every request is recorded before a byte moves (allowed or refused, with the reason), and its
byte counts when it ends. A refusal answers ``403`` with a plain-text body (and reason phrase:
``CONNECT`` clients show only that) naming the host and the setting an admin changes. Limits:
connections open at once per box, an idle timeout on each, the head's size and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from openinspect.runtime.protocol import CLOSE_UNAUTHORIZED
from openinspect.settings import (
    DEFAULT_EGRESS_CONNECT_TIMEOUT_S,
    DEFAULT_EGRESS_IDLE_TIMEOUT_S,
    DEFAULT_EGRESS_MAX_CONNECTIONS,
    DEFAULT_EGRESS_MAX_HEAD_BYTES,
    EgressSettings,
)

from .addresses import IPAddress, Resolver, is_public, resolve
from .allowlist import HTTP_PORT, AllowList, ip_literal, normalize_host, split_host_port

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
HEAD_TIMEOUT_S = 30.0
HARD_LIMIT_FACTOR = 2
"""Tunnels of one box past ``max_connections`` × this are refused at the handshake."""
CLOSE_TOO_MANY = 4029
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_DROPPED_HEADERS = frozenset(
    {
        b"proxy-authorization",
        b"proxy-connection",
        b"connection",
        b"keep-alive",
        b"upgrade",
        b"host",
        b"te",
        b"trailer",
    }
)
_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    408: "Request Timeout",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class EgressGrant:
    """Who a tunnel is: its box, the box's session (None for a box serving none yet), the
    allow-list that applies, and the repo whose own list it includes (named in refusals)."""

    sandbox_id: str
    session_id: str | None
    allow: AllowList
    repo: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One request as the log records it; ``code`` is ``allowed`` or why it was refused."""

    method: str
    host: str
    port: int
    allowed: bool
    code: str
    status: int
    message: str = ""


class EgressAuthority(Protocol):
    """Who a token is and where its requests are recorded (the session engine's side)."""

    async def grant(self, token: str) -> EgressGrant | None:
        """The grant of the live sandbox whose token this is; None for any other token."""
        ...

    async def opened(self, grant: EgressGrant, attempt: Attempt) -> str:
        """Record ``attempt`` durably before it proceeds; returns the record's id."""
        ...

    async def closed(
        self,
        record_id: str,
        *,
        bytes_up: int,
        bytes_down: int,
        duration_ms: int,
        failure: Refused | None = None,
    ) -> None:
        """Record how much an allowed request moved once it ended, or (``failure``) why it
        could not be made after all (the host did not answer)."""
        ...


class EgressSocket(Protocol):
    """The WebSocket a tunnel arrives on (Starlette's ``WebSocket`` satisfies it)."""

    async def accept(self) -> None: ...

    async def receive(self) -> Mapping[str, object]:
        """The next ASGI message (``websocket.receive`` or ``websocket.disconnect``)."""
        ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


@dataclass(frozen=True)
class EgressLimits:
    max_head_bytes: int = DEFAULT_EGRESS_MAX_HEAD_BYTES
    head_timeout_s: float = HEAD_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_EGRESS_CONNECT_TIMEOUT_S
    idle_timeout_s: float = DEFAULT_EGRESS_IDLE_TIMEOUT_S
    max_connections: int = DEFAULT_EGRESS_MAX_CONNECTIONS
    """Open at once per box, on this server."""

    @classmethod
    def from_settings(cls, settings: EgressSettings) -> EgressLimits:
        return cls(
            max_head_bytes=settings.max_head_bytes,
            connect_timeout_s=settings.connect_timeout_s,
            idle_timeout_s=settings.idle_timeout_s,
            max_connections=settings.max_connections,
        )


class Refused(Exception):
    """A request answered with ``status`` and ``message`` instead of forwarded."""

    def __init__(self, status: int, code: str, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(status, "Error")
        self.method = ""
        """The request's method when the head got that far (for the log)."""


@dataclass(frozen=True)
class ProxyRequest:
    """A parsed request head: where it goes and, for plain HTTP, the head to send on."""

    method: str
    host: str
    port: int
    tunnel: bool
    upstream_head: bytes = b""

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_head(head: bytes) -> ProxyRequest:
    """The request in ``head`` (ending with the blank line); raises :class:`Refused`."""
    lines = head[: -len(b"\r\n\r\n")].split(b"\r\n")
    parts = lines[0].split(b" ")
    method = parts[0].decode("latin-1")
    try:
        if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
            raise Refused(400, "bad_request", "expected an HTTP/1.x request line")
        target = parts[1].decode("latin-1")
        headers = _headers(lines[1:])
        if method == "CONNECT":
            return _connect_target(target)
        if method not in METHODS:
            raise Refused(405, "bad_method", f"the egress proxy does not forward {method[:16]!r}")
        return _plain_request(method, target, parts[2], headers)
    except Refused as refused:
        refused.method = method[:16] if method.isalpha() and method.isascii() else ""
        raise


def _headers(lines: list[bytes]) -> list[bytes]:
    for line in lines:
        name, colon, _value = line.partition(b":")
        if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise Refused(400, "bad_request", "malformed request header")
    return lines


def _host(text: str) -> str:
    host = normalize_host(text)
    if host is None:
        raise Refused(400, "bad_host", f"{text[:80]!r} is not a host name or IP address")
    return host


def _connect_target(target: str) -> ProxyRequest:
    try:
        host, port = split_host_port(target)
    except ValueError as exc:
        raise Refused(400, "bad_request", f"CONNECT takes host:port: {exc}") from None
    if port is None:
        raise Refused(400, "bad_request", "CONNECT takes host:port, with the port")
    return ProxyRequest("CONNECT", _host(host), port, tunnel=True)


def _plain_request(method: str, target: str, version: bytes, headers: list[bytes]) -> ProxyRequest:
    if any(ord(c) < 33 or ord(c) > 126 for c in target):
        raise Refused(400, "bad_request", "the request target has spaces or control characters")
    url = urlsplit(target)
    if url.scheme == "https":
        raise Refused(400, "bad_request", "an https URL goes through CONNECT, not as a request")
    if url.scheme != "http" or not url.netloc:
        raise Refused(
            400,
            "bad_request",
            "this is the egress proxy: requests name an absolute http:// URL (or CONNECT)",
        )
    if "@" in url.netloc:
        raise Refused(400, "bad_request", "credentials in a proxied URL are not forwarded")
    try:
        host_text, port = split_host_port(url.netloc)
    except ValueError as exc:
        raise Refused(400, "bad_request", f"bad host in the URL: {exc}") from None
    host = _host(host_text)
    port = port or HTTP_PORT
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    shown = f"[{host}]" if ":" in host else host
    kept = [f"{method} {path} ".encode() + version]
    kept += [line for line in headers if line.partition(b":")[0].lower() not in _DROPPED_HEADERS]
    kept.append(f"Host: {shown if port == HTTP_PORT else f'{shown}:{port}'}".encode())
    kept.append(b"Connection: close")
    return ProxyRequest(method, host, port, False, b"\r\n".join(kept) + b"\r\n\r\n")


def refusal_response(refused: Refused) -> bytes:
    """The answer the box gets: plain text, the code in ``X-Openinspect-Egress``."""
    body = f"egress: {refused.message}\n".encode()
    head = (
        f"HTTP/1.1 {refused.status} {refused.reason}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Openinspect-Egress: {refused.code}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def how_to_allow(host: str, repo: str | None) -> str:
    """The refusal's hint: where an admin adds ``host``."""
    scoped = (
        f", or for this repo only: openinspect repos egress {repo} --allow {host}" if repo else ""
    )
    return f"an admin can allow it in the setting sandbox.egress.allow (every repo){scoped}"


class _Tunnel:
    """Bytes in and out of one accepted WebSocket; counts and the time of the last byte."""

    def __init__(self, socket: EgressSocket) -> None:
        self._socket = socket
        self._pending = b""
        self.closed = False
        self.closed_by_us = False
        self.bytes_up = 0
        self.bytes_down = 0
        self.last_activity = time.monotonic()

    async def receive(self) -> bytes | None:
        """Bytes from the box; ``b""`` once it finished sending, None once it is gone."""
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        if self.closed:
            return None
        message = await self._socket.receive()
        if message.get("type") != "websocket.receive":
            self.closed = True
            return None
        raw = message.get("bytes")
        if not isinstance(raw, bytes):  # a text frame: not ours
            self.closed = True
            return None
        self.last_activity = time.monotonic()
        return raw

    def unread(self, data: bytes) -> None:
        self._pending = data + self._pending

    async def send(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        await self._socket.send_bytes(data)

    async def close(self) -> None:
        """Close the WebSocket (once; a socket already gone is fine)."""
        if self.closed_by_us:
            return
        self.closed_by_us = True
        with contextlib.suppress(Exception):
            await self._socket.close(1000)


class EgressProxy:
    """Serves every egress tunnel of this server (one per box connection)."""

    def __init__(
        self,
        authority: EgressAuthority,
        limits: EgressLimits | None = None,
        *,
        resolver: Resolver = resolve,
    ) -> None:
        self._authority = authority
        self._limits = limits or EgressLimits()
        self._resolve = resolver
        self._open: dict[str, int] = {}

    async def handle(self, socket: EgressSocket, headers: Mapping[str, str]) -> None:
        """Authenticate, accept and serve one tunnel; ``socket`` is not accepted yet."""
        lowered = {key.lower(): value for key, value in headers.items()}
        scheme, _, token = lowered.get("authorization", "").partition(" ")
        grant = await self._authority.grant(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None:
            with contextlib.suppress(Exception):
                await socket.close(CLOSE_UNAUTHORIZED, "unknown sandbox or invalid token")
            return
        box = grant.sandbox_id
        if self._open.get(box, 0) >= HARD_LIMIT_FACTOR * self._limits.max_connections:
            # Past the limit a tunnel still reads its head to answer a 429 naming the host;
            # this far past it, not even that (a flood costs the server nothing more).
            with contextlib.suppress(Exception):
                await socket.close(CLOSE_TOO_MANY, "too many egress connections")
            return
        self._open[box] = self._open.get(box, 0) + 1  # counted before the box hears back
        tunnel = _Tunnel(socket)
        try:
            over_limit = self._open[box] > self._limits.max_connections
            await socket.accept()
            await self._serve(tunnel, grant, over_limit=over_limit)
        except Exception:
            logger.exception("egress: a tunnel of %s failed", box)
        finally:
            self._open[box] -= 1
            if not self._open[box]:
                del self._open[box]
            await tunnel.close()

    async def _serve(self, tunnel: _Tunnel, grant: EgressGrant, *, over_limit: bool) -> None:
        try:
            request = await self._read_request(tunnel)
        except Refused as refused:
            # Recorded too, without a host: a malformed request names none worth keeping.
            malformed = Attempt(
                refused.method, "", 0, False, refused.code, refused.status, refused.message
            )
            await self._authority.opened(grant, malformed)
            with contextlib.suppress(Exception):
                await tunnel.send(refusal_response(refused))
            return
        if request is None:
            return
        try:
            if over_limit:
                raise Refused(
                    429,
                    "too_many_connections",
                    f"a box has at most {self._limits.max_connections} egress connections "
                    "open at once; close some and retry",
                )
            addresses = await self._judge(request, grant)
        except Refused as refused:
            await self._authority.opened(grant, _attempt(request, refused))
            with contextlib.suppress(Exception):
                await tunnel.send(refusal_response(refused))
            return
        await self._forward(tunnel, grant, request, addresses)

    async def _read_request(self, tunnel: _Tunnel) -> ProxyRequest | None:
        """The request head, parsed; None when the box left before sending one."""
        limit = self._limits.max_head_bytes
        buffer = b""
        try:
            async with asyncio.timeout(self._limits.head_timeout_s):
                while (end := buffer.find(b"\r\n\r\n")) < 0:
                    if len(buffer) > limit:
                        break
                    data = await tunnel.receive()
                    if not data:
                        return None
                    buffer += data
        except TimeoutError:
            raise Refused(408, "head_timeout", "no complete request head in time") from None
        if end < 0 or end + 4 > limit:
            raise Refused(431, "head_too_large", f"the request head is over {limit} bytes")
        tunnel.unread(buffer[end + 4 :])
        return parse_head(buffer[: end + 4])

    async def _judge(self, request: ProxyRequest, grant: EgressGrant) -> list[IPAddress]:
        """The addresses ``request`` may connect to; raises :class:`Refused`."""
        host, port = request.host, request.port
        verdict = grant.allow.judge(host, port, tunnel=request.tunnel)
        if verdict.entry is None:
            if verdict.host_listed:
                code, what, entry = "port_not_allowed", f'port {port} of host "{host}"', None
            else:
                code, what, entry = "host_not_allowed", f'host "{host}"', host
            raise Refused(
                403,
                code,
                f"{what} is not allowed; {how_to_allow(entry or request.authority, grant.repo)}",
                reason=f"Forbidden by the egress allow-list: {request.authority}",
            )
        literal = ip_literal(host)
        if literal is not None:
            return [literal]  # matched only by an entry naming this very address
        try:
            async with asyncio.timeout(self._limits.connect_timeout_s):
                addresses = await self._resolve(host, port)
        except (OSError, TimeoutError):
            raise Refused(502, "unresolved", f'cannot resolve host "{host}"') from None
        if not verdict.exact and not all(is_public(a) for a in addresses):
            raise Refused(
                403,
                "private_address",
                f'host "{host}" resolves to an address that is not public; only an entry '
                f"naming this exact host reaches one ({how_to_allow(host, grant.repo)})",
                reason=f"Forbidden by the egress allow-list: {request.authority}",
            )
        return addresses

    async def _connect(
        self, request: ProxyRequest, addresses: list[IPAddress]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        failure = ""
        for address in addresses:
            try:
                async with asyncio.timeout(self._limits.connect_timeout_s):
                    return await asyncio.open_connection(str(address), request.port)
            except TimeoutError:
                failure = "timed out"
            except OSError as exc:
                failure = exc.strerror or type(exc).__name__
        raise Refused(502, "unreachable", f"cannot connect to {request.authority}: {failure}")

    async def _forward(
        self,
        tunnel: _Tunnel,
        grant: EgressGrant,
        request: ProxyRequest,
        addresses: list[IPAddress],
    ) -> None:
        started = time.monotonic()
        allowed = Attempt(request.method, request.host, request.port, True, "allowed", 200)
        # Recorded while the connection is made (a remote host's round trips hide the write);
        # nothing moves before both are done.
        recording = asyncio.create_task(self._authority.opened(grant, allowed))
        try:
            reader, writer = await self._connect(request, addresses)
        except Refused as failed:
            record = await recording
            with contextlib.suppress(Exception):
                await tunnel.send(refusal_response(failed))
            await self._authority.closed(
                record, bytes_up=0, bytes_down=0, duration_ms=_ms_since(started), failure=failed
            )
            return
        except BaseException:
            recording.cancel()
            await asyncio.gather(recording, return_exceptions=True)
            raise
        try:
            record = await recording
        except BaseException:
            writer.close()
            raise
        try:
            if request.tunnel:
                await tunnel.send(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            else:
                writer.write(request.upstream_head)
            await self._pipe(tunnel, reader, writer)
        finally:
            writer.close()
            await tunnel.close()  # the box has its answer; the log need not keep it waiting
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            await self._authority.closed(
                record,
                bytes_up=tunnel.bytes_up,
                bytes_down=tunnel.bytes_down,
                duration_ms=_ms_since(started),
            )

    async def _pipe(
        self, tunnel: _Tunnel, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Copy both ways until the upstream ends, the box leaves or nothing moves for the
        idle timeout."""

        async def up() -> None:
            while (data := await tunnel.receive()) is not None:
                if not data:  # the box finished sending: so does the upstream's peer
                    if writer.can_write_eof():
                        writer.write_eof()
                    await asyncio.Future()  # wait for the answer to end
                tunnel.bytes_up += len(data)
                writer.write(data)
                await writer.drain()

        async def down() -> None:
            while chunk := await reader.read(CHUNK_BYTES):
                tunnel.bytes_down += len(chunk)
                await tunnel.send(chunk)

        async def idle() -> None:
            timeout = self._limits.idle_timeout_s
            # Woken by time, not by an event: the traffic moves last_activity.
            while (left := tunnel.last_activity + timeout - time.monotonic()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(left)

        tasks = [asyncio.create_task(job()) for job in (up, down, idle)]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _attempt(request: ProxyRequest, refused: Refused) -> Attempt:
    return Attempt(
        request.method,
        request.host,
        request.port,
        False,
        refused.code,
        refused.status,
        refused.message,
    )
