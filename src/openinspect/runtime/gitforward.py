"""git's way out of the box: a loopback HTTP forwarder to the control plane's git proxy.

The sandbox's ``origin`` is ``http://127.0.0.1:<port>/git/<session>/<owner>/<repo>.git``. Each
connection to that port is forwarded to where the bridge listens (its Unix socket, or its host and
port for a remote box, over TLS for ``wss``: :mod:`.address`), where the control plane serves
the git proxy; a remote control plane gets its own ``Host`` instead of the loopback one.
The forwarder reads the request head (at most :data:`MAX_HEAD_BYTES`), refuses
any path outside ``/git/``, drops the client's ``Authorization``, ``Proxy-Authorization``,
``Connection`` and ``Upgrade`` headers, adds the sandbox's bearer token and ``Connection: close``,
and then copies bytes both ways until either side is done (chunked bodies pass untouched). So
git in the box needs no credentials: neither its config nor its environment holds any, and the
sandbox token stays in this process.

One request per connection: git opens a new connection when the proxy closes one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from urllib.parse import unquote

from .address import BridgeAddress
from .loopback import LOOPBACK, LoopbackListener, close_writer

logger = logging.getLogger("openinspect.runtime.gitforward")

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT_S = 30.0
CHUNK_BYTES = 64 * 1024
GIT_PATH_PREFIX = "/git/"
_DROPPED_HEADERS = frozenset(
    {
        b"authorization",
        b"proxy-authorization",
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"upgrade",
    }
)
_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
}


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _path_allowed(target: str) -> bool:
    """Only origin-form targets under ``/git/``, without dot segments (even percent-encoded)."""
    if not target.startswith(GIT_PATH_PREFIX):
        return False
    path = unquote(target.split("?", 1)[0])
    if any(ord(c) < 33 or c in "\\#" for c in path):
        return False
    return not any(part in (".", "..") for part in path.split("/"))


def rewrite_head(head: bytes, token: str, *, host: str = "") -> bytes:
    """The request head to send on: our credentials and ``Connection: close`` instead of the
    client's, and ``host`` (when given) as its ``Host``. ``head`` ends with the blank line;
    raises ``_Refused`` for a bad request."""
    lines = head[: -len(b"\r\n\r\n")].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise _Refused(400, "expected an HTTP/1.x request line")
    target = parts[1].decode("latin-1")
    if not _path_allowed(target):
        raise _Refused(
            403, f"only the git proxy under {GIT_PATH_PREFIX} is reachable, not {target}"
        )
    kept = [lines[0]]
    for line in lines[1:]:
        name, colon, _value = line.partition(b":")
        if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise _Refused(400, "malformed request header")
        if name.lower() not in _DROPPED_HEADERS and not (host and name.lower() == b"host"):
            kept.append(line)
    if host:
        kept.append(b"Host: " + host.encode())
    kept.append(b"Authorization: Bearer " + token.encode())
    kept.append(b"Connection: close")
    return b"\r\n".join(kept) + b"\r\n\r\n"


def _error_response(status: int, message: str) -> bytes:
    body = f"openinspect: {message}\n".encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, half_close: bool
) -> None:
    """Copy until EOF; then signal EOF onward (``half_close``) so the other side sees the end."""
    with contextlib.suppress(OSError):
        while chunk := await reader.read(CHUNK_BYTES):
            writer.write(chunk)
            await writer.drain()
        if half_close and writer.can_write_eof():
            writer.write_eof()


class GitForwarder(LoopbackListener):
    """Listens on ``127.0.0.1:<port>`` (port 0 picks a free one) and forwards to the git proxy
    where the bridge at ``address`` listens, with ``token`` (``tls`` for a ``wss`` address).
    ``start`` returns the port."""

    label = "git forwarder"
    log = logger

    def __init__(
        self,
        address: BridgeAddress,
        token: str,
        *,
        tls: ssl.SSLContext | None = None,
        host: str = LOOPBACK,
        port: int = 0,
        inherited_fd: int | None = None,
    ) -> None:
        super().__init__(host=host, port=port, limit=MAX_HEAD_BYTES, inherited_fd=inherited_fd)
        self._address = address
        self._tls = tls
        self._token = token

    def url(self, path: str) -> str:
        """The URL git uses for ``path`` (``/git/…``)."""
        return f"http://{self._host}:{self._port}{path}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._forward(reader, writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(HEAD_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            request = rewrite_head(head, self._token, host=self._address.authority)
        except (asyncio.LimitOverrunError, ValueError):
            writer.write(_error_response(431, f"request head over {MAX_HEAD_BYTES} bytes"))
            return
        except _Refused as refused:
            writer.write(_error_response(refused.status, refused.message))
            return
        except (asyncio.IncompleteReadError, TimeoutError, OSError):
            return
        try:
            up_reader, up_writer = await self._address.open_stream(self._tls)
        except OSError as exc:  # ssl.SSLError included
            logger.warning("git forwarder: cannot reach %s: %s", self._address.url, exc)
            writer.write(_error_response(502, f"the control plane is not reachable: {exc}"))
            return
        try:
            up_writer.write(request)
            upload = asyncio.create_task(_pipe(reader, up_writer, half_close=True))
            try:
                # The answer ends the exchange (the proxy closes after it); the upload may still
                # be running if the proxy answered early.
                await _pipe(up_reader, writer, half_close=False)
            finally:
                upload.cancel()
                await asyncio.gather(upload, return_exceptions=True)
        finally:
            await close_writer(up_writer)
