"""Where the control plane's bridge is: one URL, dialled the same way for every backend.

``unix:///run/openinspect/bridge.sock``
    A Unix socket (``bwrap`` and ``process`` boxes, on the server's host). The WebSocket
    handshake names ``ws://localhost/sandbox/bridge``, as a Unix socket has no host.
``wss://control.example.com/sandbox/bridge`` (or ``ws://`` on loopback, for tests)
    A remote box dialling the control plane over the network, with TLS. The box trusts the
    system's CAs, or only the PEM file ``OPENINSPECT_BRIDGE_CA_FILE`` names (a self-hosted
    control plane with its own CA).

The git forwarder (:mod:`.gitforward`) reaches the git proxy at the same place: the same socket,
or the same host and port (over TLS for ``wss``). Standard library only: the runtime ships alone.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

from .protocol import BRIDGE_PATH, BRIDGE_URI

Scheme = Literal["unix", "ws", "wss"]
SCHEMES: tuple[Scheme, ...] = ("unix", "ws", "wss")
MAX_URL_CHARS = 2048
_DEFAULT_PORTS = {"ws": 80, "wss": 443}


class BadBridgeAddress(ValueError):
    """A bridge URL this runtime cannot dial; the message says what was expected."""


def unix_url(path: str) -> str:
    """The bridge URL of the Unix socket at ``path`` (absolute)."""
    if not path.startswith("/"):
        raise BadBridgeAddress(f"a bridge socket path must be absolute, got {path!r}")
    return "unix://" + quote(path)


@dataclass(frozen=True)
class BridgeAddress:
    """A parsed bridge URL (:meth:`parse`); ``path`` is the socket's for ``unix``, the URL's
    path for ``ws``/``wss``."""

    url: str
    scheme: Scheme
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> BridgeAddress:
        """Check ``url``; raises :class:`BadBridgeAddress` saying what is wrong with it."""
        if len(url) > MAX_URL_CHARS:
            raise BadBridgeAddress(f"a bridge URL is at most {MAX_URL_CHARS} characters")
        parts = urlsplit(url)
        scheme = next((s for s in SCHEMES if s == parts.scheme), None)
        if scheme is None:
            raise BadBridgeAddress(
                f"a bridge URL starts with unix://, ws:// or wss://, got {url[:80]!r}"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise BadBridgeAddress("a bridge URL has no query, fragment or credentials")
        if scheme == "unix":
            path = unquote(parts.path)
            if parts.netloc or not path.startswith("/") or "\0" in path:
                raise BadBridgeAddress(
                    f"a unix bridge URL is unix:///absolute/path.sock, got {url[:80]!r}"
                )
            return cls(url, scheme, "", 0, path)
        if not parts.hostname:
            raise BadBridgeAddress(f"a {scheme} bridge URL names a host, got {url[:80]!r}")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError as exc:  # a port out of range or not a number
            raise BadBridgeAddress(f"bad port in the bridge URL: {exc}") from None
        path = parts.path or BRIDGE_PATH
        return cls(url, scheme, parts.hostname, port, path)

    @property
    def ws_uri(self) -> str:
        """The URI of the WebSocket handshake."""
        return BRIDGE_URI if self.scheme == "unix" else self.url

    def ws_uri_for(self, path: str) -> str:
        """The WebSocket URI of ``path`` (``/sandbox/egress``) served next to the bridge: the
        bridge URL's path with its last part replaced (``wss://host/x/sandbox/bridge`` gives
        ``wss://host/x/sandbox/egress``)."""
        if self.scheme == "unix":
            return f"ws://localhost{path}"
        base = self.path.removesuffix(BRIDGE_PATH) if self.path.endswith(BRIDGE_PATH) else ""
        netloc = urlsplit(self.url).netloc
        return f"{self.scheme}://{netloc}{base}{path}"

    @property
    def authority(self) -> str:
        """``host[:port]`` for a ``Host`` header (empty for ``unix``)."""
        if self.scheme == "unix":
            return ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def tls(self, ca_file: str | None) -> ssl.SSLContext | None:
        """The TLS context of a ``wss`` address (``ca_file`` replaces the system's CAs), None
        for the others. Raises ``OSError``/``ssl.SSLError`` for an unreadable ``ca_file``."""
        if self.scheme != "wss":
            return None
        return ssl.create_default_context(cafile=ca_file)

    async def open_stream(
        self, tls: ssl.SSLContext | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A byte stream to where the bridge listens (for the git forwarder's HTTP)."""
        if self.scheme == "unix":
            return await asyncio.open_unix_connection(self.path)
        return await asyncio.open_connection(
            self.host, self.port, ssl=tls, server_hostname=self.host if tls else None
        )
