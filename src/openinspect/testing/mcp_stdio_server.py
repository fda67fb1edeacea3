"""A tiny MCP server over stdio, for inside a box: the box's ``python3`` and the standard
library only (the SDK is not importable there). Newline-delimited JSON-RPC 2.0: ``initialize``,
``tools/list``, ``tools/call`` and ``ping``; notifications are read and ignored.

Tools: ``whoami {}`` (the box's hostname, cwd and whether it sees any MCP credential in its
environment) and ``add {a, b}``. Run as ``python3 mcp_stdio_server.py [MODE]``; a MODE makes it
hostile, for the tests of the control plane's limits: ``flood`` (one huge line), ``garbage``
(a line that is not JSON-RPC), ``mute`` (never answers a call).
"""

import json
import os
import socket
import sys
from typing import Any

TOOLS: list[dict[str, Any]] = [
    {
        "name": "whoami",
        "description": "Where this server runs.",
        "inputSchema": {"type": "object", "properties": {}},
    },
    {
        "name": "add",
        "description": "Add two integers.",
        "inputSchema": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
]


def answer(request: dict[str, Any]) -> dict[str, Any] | None:
    method = request.get("method")
    if method == "initialize":
        return {
            "protocolVersion": request.get("params", {}).get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "openinspect-box-stdio", "version": "1"},
        }
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": TOOLS}
    if method == "tools/call":
        params = request.get("params", {})
        args = params.get("arguments") or {}
        if params.get("name") == "whoami":
            env = " ".join(sorted(os.environ))
            text = json.dumps(
                {"hostname": socket.gethostname(), "cwd": os.getcwd(), "env_names": env}
            )
        elif params.get("name") == "add":
            text = str(int(args["a"]) + int(args["b"]))
        else:
            return None
        return {"content": [{"type": "text", "text": text}], "isError": False}
    return None


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if "id" not in request:
            continue
        if mode == "mute" and request.get("method") == "tools/call":
            continue
        if mode == "flood" and request.get("method") == "tools/call":
            sys.stdout.write("x" * 3_000_000 + "\n")
            sys.stdout.flush()
            continue
        if mode == "garbage" and request.get("method") == "tools/call":
            sys.stdout.write("this is not json\n")
            sys.stdout.flush()
            continue
        result = answer(request)
        if result is None:
            error = {"code": -32601, "message": "no such method or tool"}
            reply = {"jsonrpc": "2.0", "id": request["id"], "error": error}
        else:
            reply = {"jsonrpc": "2.0", "id": request["id"], "result": result}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
