"""A hard cap on request bodies, before anything parses them.

The body is read in full (up to the cap) before the app sees the request, so a body sent in
chunks without a Content-Length is refused with the same 413 as a declared one: the app's own
body parsing would otherwise turn a failure raised mid-read into a 400. The public API takes no
streaming uploads (the git proxy lives on the bridge socket), so holding a capped body costs at
most the cap.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openinspect.api.errors import envelope

BODY_MAX_BYTES = 2 * 1024 * 1024


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` (413, the error envelope); ``path_limits`` gives other
    caps to paths under a prefix (webhook senders post larger bodies than people do)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = BODY_MAX_BYTES,
        path_limits: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = path_limits or {}

    def _limit(self, path: str) -> int:
        for prefix, limit in self.path_limits.items():
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope.get("path", ""))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await self._reject(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as a server would

        await self.app(scope, replay, send)

    async def _reject(self, send: Send, limit: int) -> None:
        body = json.dumps(
            envelope("payload_too_large", f"Request body over {limit} bytes")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
