"""A tiny Starlette app receiving the fake Linear's webhooks and checking each one as a real
receiver must: the hex HMAC-SHA256 ``Linear-Signature`` over the raw body, and a
``webhookTimestamp`` within a minute of now."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from openinspect.testing.background import BackgroundServer

TOLERANCE_MS = 60_000


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    fresh: bool

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def valid(self) -> bool:
        return self.signature_ok and self.fresh


@dataclass
class Plan:
    """What the receiver answers: the statuses in order (then 200), delays in seconds."""

    statuses: list[int] = field(default_factory=list)
    delays_s: list[float] = field(default_factory=list)


class Receiver(BackgroundServer):
    label = "linear-receiver"

    def __init__(self, secret: str) -> None:
        super().__init__(host="127.0.0.1", port=0)
        self.secret = secret
        self.received: list[Received] = []
        self.plan = Plan()
        self._lock = threading.Lock()

    def _asgi_app(self) -> ASGIApp:
        return Starlette(routes=[Route("/webhooks/linear", self._handle, methods=["POST"])])

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        expected = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        signature_ok = hmac.compare_digest(expected, headers.get("linear-signature", ""))
        try:
            stamp = int(json.loads(body).get("webhookTimestamp", 0))
        except (ValueError, TypeError, AttributeError):
            stamp = 0
        fresh = abs(time.time() * 1000 - stamp) <= TOLERANCE_MS
        with self._lock:
            self.received.append(Received(headers, body, signature_ok, fresh))
            status = self.plan.statuses.pop(0) if self.plan.statuses else 200
            delay = self.plan.delays_s.pop(0) if self.plan.delays_s else 0.0
        if delay:
            await asyncio.sleep(delay)  # the slow receiver under test, not a sync
        if not (signature_ok and fresh):
            return Response("refused", status_code=401)
        return Response("ok", status_code=status)

    @property
    def url(self) -> str:
        return f"{self.base_url}/webhooks/linear"

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.plan = Plan()
