"""The idle runtime: what a hibernated box keeps resident (:mod:`.hibernate`).

A box whose runtime had nothing to do for a while ``exec``\\s into this: a process that imports
nothing but built-in modules (no asyncio, no ssl, no websockets: about a quarter of the full
runtime's memory), holds the bridge connection over the box's Unix socket with a WebSocket client
of a few dozen lines, sends the same ``hello`` the full runtime would and a heartbeat every
``OPENINSPECT_HEARTBEAT_S``, and answers pings. The moment anything else happens it ``exec``\\s
the full runtime back, which reconnects:

- a message from the control plane (a request: the control plane re-sends unanswered requests
  on the new connection, so nothing is lost; ``shutdown`` alone is acted on here: exit 0);
- a connection to one of the forwarders' loopback listeners it inherited (a ``git push`` of a
  background job): the connection waits in the listener's backlog for the full runtime;
- the bridge connection closing, or anything unexpected: the full runtime knows what to do.

Run as ``python3 -S -s -B -c 'from openinspect.runtime.idle import main; main()'`` with the full
runtime's environment plus :mod:`.hibernate`'s ``OPENINSPECT_RESUME_*`` variables; only unix://
bridges (a ``wss`` one needs TLS, which is most of what this process saves).
"""

from __future__ import annotations

import binascii
import os
import select
import socket
import sys
import time

BRIDGE_PATH = "/sandbox/bridge"
""":data:`.protocol.BRIDGE_PATH` (not imported: :mod:`.protocol` pulls in ``typing``)."""
SANDBOX_ID_HEADER = "X-Sandbox-Id"
HEARTBEAT = b'{"type":"heartbeat"}'
CLOSE_BUSY = 4009
"""The control plane still holds the previous connection: try again shortly."""
BUSY_RETRIES = 50
BUSY_RETRY_S = 0.1
CONNECT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 0.5
"""How long a waking runtime waits for the control plane to end the connection, so that the
full runtime's connection is not refused as a second one."""
CLOSE_RESTART = 1012
"""The WebSocket "service restart": the runtime reconnects at once."""
MAX_HANDSHAKE_BYTES = 16 * 1024
SHUTDOWN_MAX_BYTES = 128
"""A text frame this short may be ``shutdown``; anything longer is a request (and wakes)."""
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class Wake(Exception):
    """Something happened that the full runtime must handle."""


class Busy(Exception):
    """The control plane refused the connection as a second one (``CLOSE_BUSY``)."""


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 §5.2)."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + size.to_bytes(8, "big")
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(payload))


class IdleConnection:
    """One WebSocket connection to the bridge's Unix socket, read frame by frame."""

    def __init__(self, path: str, sandbox_id: str, token: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(CONNECT_TIMEOUT_S)
        self.sock.connect(path)
        key = binascii.b2a_base64(os.urandom(16), newline=False).decode()
        request = (
            f"GET {BRIDGE_PATH} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n{SANDBOX_ID_HEADER}: {sandbox_id}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            self._more(MAX_HANDSHAKE_BYTES)
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise Wake("the bridge refused the handshake")
        self.sock.settimeout(None)

    def _more(self, limit: int) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise Wake("the bridge closed the connection")
        self._buffer += chunk
        if len(self._buffer) > limit:
            raise Wake("the bridge sent more than expected")

    def send(self, opcode: int, payload: bytes) -> None:
        self.sock.sendall(_frame(opcode, payload))

    def _need(self, size: int) -> None:
        while len(self._buffer) < size:
            self._more(size + 65536)

    def read_frame(self) -> tuple[int, bytes]:
        """The next frame whose payload is short; a long data frame raises :class:`Wake`."""
        self._need(2)
        opcode, size = self._buffer[0] & 0x0F, self._buffer[1] & 0x7F
        offset = 2
        if size == 126:
            self._need(4)
            size, offset = int.from_bytes(self._buffer[2:4], "big"), 4
        elif size == 127:
            self._need(10)
            size, offset = int.from_bytes(self._buffer[2:10], "big"), 10
        if opcode in (OP_TEXT, OP_BINARY, OP_CONT) and size > SHUTDOWN_MAX_BYTES:
            raise Wake("a request arrived")
        self._need(offset + size)
        payload = self._buffer[offset : offset + size]
        self._buffer = self._buffer[offset + size :]
        return opcode, payload

    def close(self) -> None:
        """Close the connection and wait (briefly) until the control plane has let go."""
        try:
            self.send(OP_CLOSE, CLOSE_RESTART.to_bytes(2, "big"))
            self.sock.settimeout(CLOSE_TIMEOUT_S)
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        finally:
            self.sock.close()

    def pending(self) -> bool:
        """Whether a whole frame header may already be buffered."""
        return len(self._buffer) >= 2


def _is_shutdown(payload: bytes) -> bool:
    import json  # only on the way out: a short text frame from the control plane

    try:
        message = json.loads(payload)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "shutdown"


def serve(conn: IdleConnection, hello: bytes, heartbeat_s: float, listeners: list[int]) -> int:
    """Hold ``conn`` until something happens; returns an exit status (``shutdown``) or raises
    :class:`Wake` / :class:`Busy`."""
    conn.send(OP_TEXT, hello)
    next_beat = time.monotonic() + heartbeat_s
    while True:
        if not conn.pending():
            timeout = max(0.0, next_beat - time.monotonic())
            readable, _, _ = select.select([conn.sock.fileno(), *listeners], [], [], timeout)
            if any(fd in readable for fd in listeners):
                raise Wake("a forwarder has a connection")
            if not readable:
                conn.send(OP_TEXT, HEARTBEAT)
                next_beat = time.monotonic() + heartbeat_s
                continue
        opcode, payload = conn.read_frame()
        if opcode == OP_PING:
            conn.send(OP_PONG, payload)
        elif opcode == OP_PONG:
            continue
        elif opcode == OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 0
            raise Busy() if code == CLOSE_BUSY else Wake(f"the bridge closed ({code})")
        elif opcode == OP_TEXT and _is_shutdown(payload):
            return 0
        else:
            raise Wake("a message arrived")


def main() -> None:
    """Hold the bridge until woken, then ``exec`` the full runtime (or exit on ``shutdown``)."""
    env = os.environ
    path = env.get("OPENINSPECT_BRIDGE_URL", "").removeprefix("unix://")
    listeners = [
        int(item.partition("=")[2])
        for item in env.get("OPENINSPECT_RESUME_FDS", "").split(",")
        if item
    ]
    conn: IdleConnection | None = None
    try:
        heartbeat_s = float(env.get("OPENINSPECT_HEARTBEAT_S") or 30)
        hello = env["OPENINSPECT_RESUME_HELLO"].encode()
        for _ in range(BUSY_RETRIES):
            conn = IdleConnection(
                path, env["OPENINSPECT_SANDBOX_ID"], env["OPENINSPECT_SANDBOX_TOKEN"]
            )
            try:
                sys.exit(serve(conn, hello, heartbeat_s, listeners))
            except Busy:
                conn.sock.close()
                conn = None
                time.sleep(BUSY_RETRY_S)
    except (Wake, OSError, ValueError, KeyError) as exc:
        # The box's log, as the full runtime's lines: why it came back.
        sys.stderr.write(f"openinspect idle runtime: waking: {exc!r}\n")
    if conn is not None:
        conn.close()
    wake()


def wake() -> None:
    """Become the full runtime again (same environment, same inherited listeners)."""
    argv = [sys.executable, "-s", "-B", "-m", "openinspect.runtime"]
    os.execve(sys.executable, argv, os.environ)  # noqa: S606 - the same interpreter, no shell


if __name__ == "__main__":
    main()
