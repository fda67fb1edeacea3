"""The fan-out baseline: a bare ``websockets`` server that sends messages to N clients with
``websockets.broadcast`` at a fixed offered rate, nothing else. Run as a subprocess so that, like
the real server, it has its own interpreter and event loop::

    python -m bench.ws_baseline PLAN.json

``PLAN.json`` is ``{"clients": N, "rate": R, "count": C, "size": S, "compression": bool}``.
The server listens on 127.0.0.1 (a free port), prints ``{"port": P}`` on stdout, waits for N
clients, then sends message ``i`` (seq ``i``, from 1) at ``i / R`` seconds after the start, each
``{"type": "event", "event": {...}}`` of about ``S`` characters with ``ts`` stamped just before
the send (:func:`bench.common.fanout_event`), as the bench driver stamps the real server's.
It exits when every client has gone, or after its time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.server import ServerConnection, serve

from bench.common import fanout_event, offered

HOST = "127.0.0.1"
CONNECT_TIMEOUT_S = 60.0
LINGER_S = 60.0
"""How long clients may stay connected after the last message."""
START_DELAY_S = 0.2
WS_MAX_BYTES = 2 * 1024 * 1024


async def play(plan: dict[str, Any]) -> None:
    expected = int(plan["clients"])
    size = int(plan["size"])
    clients: set[ServerConnection] = set()
    everyone = asyncio.Event()
    gone = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        clients.add(ws)
        if len(clients) >= expected:
            everyone.set()
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)
            if everyone.is_set() and not clients:
                gone.set()

    compression = "deflate" if plan["compression"] else None
    async with serve(handler, HOST, 0, max_size=WS_MAX_BYTES, compression=compression) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        await asyncio.wait_for(everyone.wait(), CONNECT_TIMEOUT_S)
        await asyncio.sleep(START_DELAY_S)

        async def send(seqs: range) -> None:
            for seq in seqs:
                event = fanout_event(seq, size)
                websockets.broadcast(clients, json.dumps({"type": "event", "event": event}))

        await offered(float(plan["rate"]), int(plan["count"]), send)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gone.wait(), LINGER_S)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.ws_baseline PLAN.json", file=sys.stderr)
        return 2
    asyncio.run(play(json.loads(Path(argv[0]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
