"""The fan-out bench's lightweight receivers against a real ``websockets`` server: every client
gets every frame, the hello is sent before anything counts, and a server's close is a cut-off."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.server import ServerConnection, serve

from bench import receivers
from bench.common import fanout_event


def _plan(url: str, clients: int, hello: str | None, count: int) -> dict[str, object]:
    return {
        "clients": [{"url": url, "hello": hello}] * clients,
        "first_seq": 1,
        "count": count,
        "max_bytes": 1 << 20,
        "limit_s": 10,
    }


async def test_every_client_gets_every_event_after_its_hello() -> None:
    hellos: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        hellos.append(str(await ws.recv()))
        await ws.send(json.dumps({"type": "subscribed"}))
        for seq in range(1, 51):
            await ws.send(json.dumps({"type": "event", "event": fanout_event(seq, 300)}))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression="deflate") as server:
        port = next(iter(server.sockets)).getsockname()[1]
        plan = _plan(f"ws://127.0.0.1:{port}", 3, '{"type": "subscribe"}', 50)
        got = await asyncio.wait_for(receivers.play(plan), 20)
    assert hellos == ['{"type": "subscribe"}'] * 3
    assert got["delivered"] == 150 and got["delivered_share"] == 1.0
    assert got["cut_off_clients"] == 0
    assert 0 <= got["p99_latency_ms"] < 5000


async def test_a_client_the_server_closes_on_is_cut_off_and_ends_the_wait() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "event", "event": fanout_event(1, 300)}))
        await ws.close(1008, "behind")

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        got = await asyncio.wait_for(receivers.play(_plan(f"ws://127.0.0.1:{port}", 2, None, 5)), 8)
    assert got["cut_off_clients"] == 2
    assert got["delivered"] <= 2 and got["delivered_share"] < 1
