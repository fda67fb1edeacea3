"""The doors every HTTP fake has: request bodies read with a cap, the ``/_fake`` control
endpoints' JSON (``{"ok": false, "error": …}`` errors that name the kind of thing, never the
value sent) and failures a test injects for the next calls of an API method."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

T = TypeVar("T")

MAX_BODY_BYTES = 1024 * 1024
MAX_CONTROL_BODY = 256 * 1024
MAX_FIELD_CHARS = 40_000
MAX_WAIT_S = 30.0


class TooLarge(Exception):
    """The body is over the cap (declared or streamed)."""


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def control_error(status: int, message: str) -> Response:
    return JSONResponse({"ok": False, "error": message}, status_code=status)


async def json_object(request: Request, limit: int = MAX_CONTROL_BODY) -> dict[str, Any] | Response:
    """The JSON object a control endpoint was sent (empty body: ``{}``), or the error answer."""
    try:
        raw = await read_body(request, limit)
        data = json.loads(raw) if raw.strip() else {}
    except TooLarge:
        return control_error(413, "request_too_large")
    except ValueError:
        return control_error(400, "expected a JSON object")
    if not isinstance(data, dict):
        return control_error(400, "expected a JSON object")
    return data


def string_field(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """``data[name]``: a non-empty string of at most ``MAX_FIELD_CHARS``; ValueError otherwise."""
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_FIELD_CHARS:
        raise ValueError(f"expected {name!r}: a non-empty string")
    return value


async def wait_asked(request: Request, wait: Callable[[float], object]) -> Response | None:
    """Honour ``?wait_s=N`` (at most ``MAX_WAIT_S``): run ``wait(N)`` off the loop, ignoring its
    timeout (the endpoint answers with what is there by then). An error answer for a bad N."""
    asked = request.query_params.get("wait_s", "")
    if not asked:
        return None
    try:
        wait_s = min(max(float(asked), 0.0), MAX_WAIT_S)
    except ValueError:
        return control_error(400, "expected wait_s: seconds")
    with contextlib.suppress(TimeoutError):
        await asyncio.to_thread(wait, wait_s)
    return None


class Injected(Generic[T]):
    """Answers injected for the next calls of a method: one per call, per method, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: dict[str, list[T]] = {}

    def add(self, method: str, item: T, times: int) -> None:
        with self._lock:
            self._queued.setdefault(method, []).extend([item] * times)

    def take(self, *methods: str) -> T | None:
        """The next one queued for the first of ``methods`` that has one."""
        with self._lock:
            for method in methods:
                queued = self._queued.get(method)
                if queued:
                    return queued.pop(0)
            return None
