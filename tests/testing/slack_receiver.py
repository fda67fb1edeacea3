"""A tiny Starlette app receiving the fake Slack's deliveries, verifying each signature with
slack_sdk's own SignatureVerifier, as a real app would."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from openinspect.testing.background import BackgroundServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    valid: bool

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(parse_qs(self.body.decode())["payload"][0])
        return data


@dataclass
class Plan:
    """What the receiver answers: the statuses in order (then 200), delays in seconds."""

    statuses: list[int] = field(default_factory=list)
    delays_s: list[float] = field(default_factory=list)
    no_retry: bool = False


class Receiver(BackgroundServer):
    label = "slack-receiver"

    def __init__(self, signing_secret: str) -> None:
        super().__init__(host="127.0.0.1", port=0)
        self.verifier = SignatureVerifier(signing_secret)
        self.received: list[Received] = []
        self.plan = Plan()
        self._lock = threading.Lock()

    def _asgi_app(self) -> ASGIApp:
        return Starlette(
            routes=[
                Route("/slack/events", self._handle, methods=["POST"]),
                Route("/slack/interactions", self._handle, methods=["POST"]),
            ]
        )

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        valid = self.verifier.is_valid_request(body, headers)
        with self._lock:
            self.received.append(Received(request.url.path, headers, body, valid))
            status = self.plan.statuses.pop(0) if self.plan.statuses else 200
            delay = self.plan.delays_s.pop(0) if self.plan.delays_s else 0.0
        if delay:
            await asyncio.sleep(delay)  # the slow receiver under test, not a sync
        if not valid:
            return Response("invalid signature", status_code=401)
        if request.url.path == "/slack/events":
            data = json.loads(body)
            if data.get("type") == "url_verification":
                return JSONResponse({"challenge": data["challenge"]})
        extra = {"X-Slack-No-Retry": "1"} if self.plan.no_retry else {}
        return Response("", status_code=status, headers=extra)

    @property
    def events_url(self) -> str:
        return f"{self.base_url}/slack/events"

    @property
    def interactions_url(self) -> str:
        return f"{self.base_url}/slack/interactions"
