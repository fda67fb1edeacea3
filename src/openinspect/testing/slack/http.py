"""The Web API over HTTP: reads one request (size-capped), finds the token, answers injected
failures, runs the method and records the call."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openinspect.testing.doors import Injected, TooLarge, read_body
from openinspect.testing.slack import webapi
from openinspect.testing.slack.records import ApiCall, TokenKind
from openinspect.testing.slack.state import SlackState


@dataclass
class Failure:
    error: str
    status: int
    retry_after: int | None


Failures = Injected[Failure]
"""Answers injected with ``fail_next``: one per call, per method, in order."""


def parse_args(content_type: str, body: bytes, query: str) -> dict[str, Any] | None:
    """Query, then the body's fields; None when the body cannot be read as its type says."""
    args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    if not body.strip():
        return args
    if kind == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        args.update(data)
    elif kind == "application/x-www-form-urlencoded" or kind == "":
        try:
            args.update(
                parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
            )
        except (UnicodeDecodeError, ValueError):
            return None
    else:
        return None
    return args


@dataclass
class WebApi:
    state: SlackState
    bot_token: str
    app_token: str
    failures: Failures
    socket_url: Callable[[], str]

    def token_kind(self, token: str | None) -> TokenKind:
        if not token:
            return "missing"
        if token == self.bot_token:
            return "bot"
        if token == self.app_token:
            return "app"
        return "invalid"

    async def endpoint(self, request: Request) -> Response:
        method = request.path_params["method"]
        try:
            body = await read_body(request)
        except TooLarge:
            return JSONResponse({"ok": False, "error": "request_too_large"}, status_code=413)
        args = parse_args(request.headers.get("content-type", ""), body, request.url.query)
        token: str | None = None
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if args is not None:
            field_token = args.pop("token", None)
            if token is None and isinstance(field_token, str):
                token = field_token
        kind = self.token_kind(token)
        status, headers = 200, {}
        failure = self.failures.take(method)
        if failure is not None:
            answer: dict[str, Any] = {"ok": False, "error": failure.error}
            status = failure.status
            if failure.retry_after is not None:
                headers["Retry-After"] = str(failure.retry_after)
        elif args is None:
            answer = {"ok": False, "error": "invalid_form_data"}
        else:
            ctx = webapi.Ctx(self.state, kind, self.socket_url)
            answer = webapi.call(ctx, method, args)
        self.state.record_call(
            ApiCall(
                method=method,
                args=copy.deepcopy(args or {}),
                token_kind=kind,
                ok=bool(answer.get("ok")),
                error=answer.get("error"),
                status=status,
                at=time.time(),
            )
        )
        return JSONResponse(answer, status_code=status, headers=headers)
