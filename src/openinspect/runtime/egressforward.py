"""The box's way to the network: a loopback port that carries each connection to the egress
proxy in the control plane.

The box has no network but loopback. Its commands get ``HTTP_PROXY``/``HTTPS_PROXY`` (and the
lowercase and npm spellings: :meth:`EgressForwarder.environment`) pointing at
``http://127.0.0.1:<port>``, where this forwarder listens. It understands nothing of HTTP: each
connection becomes one WebSocket to ``/sandbox/egress`` where the bridge is (:mod:`.address`),
authenticated with the sandbox's token, and bytes go both ways as binary messages (an empty one
when the box has finished sending). The control plane parses the request, applies the
allow-list, records it and answers (:mod:`openinspect.egress.proxy`); a refusal reaches the
client as the proxy wrote it. So nothing in the box can widen what it may reach, and the token
stays in this process.

``NO_PROXY`` keeps loopback direct: the git forwarder (:mod:`.gitforward`) and a dev server the
box runs itself are on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .address import BridgeAddress
from .bridge import dial
from .loopback import LOOPBACK, LoopbackListener
from .protocol import EGRESS_PATH

logger = logging.getLogger("openinspect.runtime.egressforward")

CHUNK_BYTES = 64 * 1024
MAX_MESSAGE_BYTES = 1024 * 1024
NO_PROXY = "127.0.0.1,localhost,::1"


def _answer(status: int, reason: str, message: str) -> bytes:
    body = f"openinspect: {message}\n".encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


class EgressForwarder(LoopbackListener):
    """Listens on ``127.0.0.1:<port>`` (port 0: a free one) and carries every connection to
    the egress proxy where the bridge at ``address`` listens, with ``token``."""

    label = "egress forwarder"
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
        super().__init__(host=host, port=port, inherited_fd=inherited_fd)
        self._address = address
        self._token = token
        self._tls = tls

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def environment(self) -> dict[str, str]:
        """What commands get so that curl, pip, npm, git and the rest use the proxy."""
        url = self.url
        return {
            "HTTP_PROXY": url,
            "HTTPS_PROXY": url,
            "http_proxy": url,
            "https_proxy": url,
            "NO_PROXY": NO_PROXY,
            "no_proxy": NO_PROXY,
            "npm_config_proxy": url,
            "npm_config_https_proxy": url,
        }

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with dial(
                self._address,
                self._address.ws_uri_for(EGRESS_PATH),
                headers={"Authorization": f"Bearer {self._token}"},
                tls=self._tls,
                max_size=MAX_MESSAGE_BYTES,
                compression=None,  # TLS inside, or a local socket: nothing to gain
                ping_interval=None,
            ) as ws:
                await _pipe(reader, writer, ws)
        except InvalidStatus as exc:
            status = exc.response.status_code
            writer.write(
                _answer(
                    502,
                    "Bad Gateway",
                    f"the control plane refused this box's egress (HTTP {status}): the sandbox "
                    "is unknown or gone, or egress is off on this server",
                )
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            logger.warning("egress forwarder: cannot reach the control plane: %s", exc)
            writer.write(_answer(502, "Bad Gateway", "the control plane is not reachable"))


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ws: ClientConnection
) -> None:
    """Copy both ways until the control plane closes (or the client leaves altogether)."""

    async def up() -> None:
        while chunk := await reader.read(CHUNK_BYTES):
            await ws.send(chunk)
        await ws.send(b"")  # finished sending: the control plane half-closes upstream
        await asyncio.Future()  # the answer is still coming

    async def down() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if isinstance(message, bytes):
                    writer.write(message)
                    await writer.drain()

    tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
