"""The server start-up baseline: a bare uvicorn server whose one ASGI route answers
``GET /healthz``, nothing else. Run as a subprocess, as the real server is::

    python -m bench.bare_server INFO.json

It listens on 127.0.0.1 (a free port) and writes ``{"url": …, "pid": …}`` to ``INFO.json`` just
before it serves, as ``openinspect serve`` writes ``server.json``; it runs until interrupted.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn

HOST = "127.0.0.1"
BODY = b'{"status":"ok"}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    found = scope["path"] == "/healthz"
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200 if found else 404, "headers": headers})
    await send({"type": "http.response.body", "body": BODY if found else b""})


async def serve(info: Path) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    sock.listen(128)
    url = f"http://{HOST}:{sock.getsockname()[1]}"
    info.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    await server.serve(sockets=[sock])


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.bare_server INFO.json", file=sys.stderr)
        return 2
    asyncio.run(serve(Path(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
