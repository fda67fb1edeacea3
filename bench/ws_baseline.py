"""The fan-out baseline: a bare ``websockets`` server that replays a schedule of messages to N
clients with ``websockets.broadcast``, nothing else. Run as a subprocess so that, like the real
server, it has its own interpreter and event loop::

    python -m bench.ws_baseline SCHEDULE.json

``SCHEDULE.json`` is ``{"clients": N, "messages": [{"offset_s": .., "size": .., "type": ..}]}``.
The server listens on 127.0.0.1 (a free port), prints ``{"port": P}`` on stdout, waits for N
clients, then sends each message at ``offset_s`` after the start, as
``{"type": "event", "event": {"type", "seq", "ts", ...padding}}`` of ``size`` characters with
``ts`` stamped just before the send, as the real server stamps an event when it is created.
It exits when every client has gone, or after its time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.server import ServerConnection, serve

HOST = "127.0.0.1"
CONNECT_TIMEOUT_S = 60.0
LINGER_S = 60.0
"""How long clients may stay connected after the last message."""
START_DELAY_S = 0.2
WS_MAX_BYTES = 2 * 1024 * 1024


def render(kind: str, seq: int, size: int) -> str:
    """A message shaped like the real server's, padded to ``size`` characters."""
    event: dict[str, Any] = {
        "v": 1,
        "session_id": "ses_baseline",
        "seq": seq,
        "ts": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "prompt_id": "prm_baseline",
        "type": kind,
        "pad": "",
    }
    bare = len(json.dumps({"type": "event", "event": event}))
    event["pad"] = "x" * max(0, size - bare)
    return json.dumps({"type": "event", "event": event})


async def play(schedule: dict[str, Any]) -> None:
    expected = int(schedule["clients"])
    messages: list[dict[str, Any]] = schedule["messages"]
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

    async with serve(handler, HOST, 0, max_size=WS_MAX_BYTES) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        await asyncio.wait_for(everyone.wait(), CONNECT_TIMEOUT_S)
        await asyncio.sleep(START_DELAY_S)
        started = time.monotonic()
        for seq, item in enumerate(messages, start=1):
            delay = started + float(item["offset_s"]) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            websockets.broadcast(clients, render(str(item["type"]), seq, int(item["size"])))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gone.wait(), LINGER_S)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.ws_baseline SCHEDULE.json", file=sys.stderr)
        return 2
    schedule = json.loads(Path(argv[0]).read_text())
    asyncio.run(play(schedule))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
