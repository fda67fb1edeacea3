"""The fan-out bench's clients: N lightweight WebSocket receivers in a process of their own, used
identically for the real server and the bare baseline. Run by :mod:`bench.fanout`::

    python -m bench.receivers PLAN.json

``PLAN.json`` is ``{"clients": [{"url": U, "hello": TEXT | null}, …], "first_seq": F,
"count": C, "max_bytes": B, "limit_s": L}``. Each client is one asyncio ``Protocol`` driving the
``websockets`` sans-I/O ``ClientProtocol`` (the library's own handshake and frame parser, offering
permessage-deflate as ``websockets.connect`` does), so a frame costs a parse and an append, not a
coroutine and a queue hop as in a full client: with 100 clients at 1,000 events/s the harness has
100k frames/s to take, and full clients in the bench's own process saturated the cores before
either server did. Every client reads every frame off its socket as it arrives, so a server's
backpressure is real. ``hello`` is sent once the handshake is done (the real server's
``subscribe``); a client is ready once it has it sent and read ``{"type": "subscribed"}`` (or at
once without a hello). When all are ready the process prints ``{"ready": true}``, then records
``(receive time, frame)`` for each frame and parses them only at the end: it prints one JSON line
of the delivery of seqs ``F .. F + C - 1`` (:func:`summarize`) once every client got seq
``F + C - 1`` or was cut off, or ``L`` seconds after ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from bench.common import gc_paused, ms, parse_ts, percentile

CONNECT_CONCURRENCY = 10
CONNECT_TIMEOUT_S = 60.0


class Receiver(asyncio.Protocol):
    """One client: the handshake, the hello, then every frame kept with its receive time."""

    def __init__(self, url: str, hello: str | None, last_seq: int, max_bytes: int) -> None:
        self.ws = ClientProtocol(
            parse_uri(url),
            extensions=enable_client_permessage_deflate(None),
            max_size=max_bytes,
        )
        self.hello = hello
        # The last event, as the server writes it compactly or ``json.dumps`` (the baseline)
        # with its spaces: without the second, each baseline run waited out ``limit_s``.
        self.markers = (f'"seq":{last_seq},'.encode(), f'"seq": {last_seq},'.encode())
        self.transport: asyncio.Transport | None = None
        self.ready = asyncio.get_running_loop().create_future()
        self.done = asyncio.Event()
        self.frames: list[tuple[float, bytes]] = []
        self.close_code: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        at = time.time()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                self._handshaken(event)
            elif isinstance(event, Frame):
                self._frame(at, event)
        self._flush()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_code is None:  # neither side closed cleanly
            self.close_code = self.ws.close_rcvd.code if self.ws.close_rcvd else 1006
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before it was subscribed"))
        self.done.set()

    def _handshaken(self, response: Response) -> None:
        if response.status_code != 101:
            self.ready.set_exception(ConnectionError(f"handshake: HTTP {response.status_code}"))
        elif self.hello is None:
            self.ready.set_result(None)
        else:
            self.ws.send_text(self.hello.encode())

    def _frame(self, at: float, frame: Frame) -> None:
        if frame.opcode is Opcode.CLOSE:  # the server closed first
            rcvd = self.ws.close_rcvd
            self.close_code = rcvd.code if rcvd is not None else 1005
            self.done.set()
            return
        if frame.opcode is not Opcode.TEXT:
            return  # pings are answered by the protocol itself
        data = bytes(frame.data)
        if not self.ready.done():
            if json.loads(data).get("type") == "subscribed":
                self.ready.set_result(None)
            return
        self.frames.append((at, data))
        if any(marker in data for marker in self.markers):
            self.done.set()

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    @property
    def cut_off(self) -> bool:
        return self.close_code is not None and self.close_code != 1000

    def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.close_code is None:
            self.close_code = 1000  # we close: not cut off
        with contextlib.suppress(Exception):
            self.ws.send_close(1000)
            self._flush()
        self.transport.close()

    def events(self) -> list[tuple[float, dict[str, Any]]]:
        out = []
        for at, raw in self.frames:
            message = json.loads(raw)
            for frame in message["frames"] if message.get("type") == "batch" else [message]:
                if frame.get("type") == "event":
                    out.append((at, frame["event"]))
        return out


def summarize(receivers: Sequence[Receiver], first_seq: int, count: int) -> dict[str, Any]:
    """Delivery of events ``first_seq .. first_seq + count - 1`` to every receiver: a latency is
    a receive time minus the event's ``ts`` stamp; the wall time runs from the first stamp to the
    last receipt."""
    latencies: list[float] = []
    started, last = float("inf"), 0.0
    messages = sum(len(rec.frames) for rec in receivers)
    for rec in receivers:
        for at, event in rec.events():
            if first_seq <= int(event.get("seq", 0)) < first_seq + count:
                stamp = parse_ts(str(event["ts"]))
                latencies.append(at - stamp)
                started, last = min(started, stamp), max(last, at)
    wall = last - started if latencies else 0.0
    out: dict[str, Any] = {
        "events": count,
        "delivered": len(latencies),
        "delivered_share": round(len(latencies) / (count * len(receivers)), 3),
        "cut_off_clients": sum(1 for r in receivers if r.cut_off),
        "wall_s": round(wall, 3),
        "delivered_per_s": round(len(latencies) / wall, 1) if wall > 0 else None,
        # More than 1 when the server sends waiting frames as one ``batch`` message.
        "events_per_message": round(len(latencies) / messages, 2) if messages else None,
    }
    if latencies:
        out |= {
            "p50_latency_ms": ms(percentile(latencies, 50)),
            "p99_latency_ms": ms(percentile(latencies, 99)),
            "max_latency_ms": ms(max(latencies)),
        }
    return out


async def play(plan: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    first, count = int(plan["first_seq"]), int(plan["count"])
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    receivers: list[Receiver] = []

    async def one(client: dict[str, Any]) -> None:
        uri = parse_uri(str(client["url"]))
        rec = Receiver(
            str(client["url"]), client.get("hello"), first + count - 1, int(plan["max_bytes"])
        )
        receivers.append(rec)
        async with gate:
            await loop.create_connection(lambda: rec, uri.host, uri.port)
            await rec.ready

    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await asyncio.gather(*(one(client) for client in plan["clients"]))
        print(json.dumps({"ready": True}), flush=True)
        with gc_paused(), contextlib.suppress(TimeoutError):
            async with asyncio.timeout(float(plan["limit_s"])):
                await asyncio.gather(*(rec.done.wait() for rec in receivers))
    finally:
        for rec in receivers:
            rec.close()
        await asyncio.sleep(0.1)  # let the close frames go out
    return summarize(receivers, first, count)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.receivers PLAN.json", file=sys.stderr)
        return 2
    print(json.dumps(asyncio.run(play(json.loads(Path(argv[0]).read_text())))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
