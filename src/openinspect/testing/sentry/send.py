"""Sending a webhook as Sentry does: a JSON POST with ``Content-Type``, ``Request-ID``,
``Sentry-Hook-Resource``, ``Sentry-Hook-Timestamp`` (Unix seconds) and
``Sentry-Hook-Signature`` (the hex HMAC-SHA256 of the exact body bytes, keyed with the
integration's client secret)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from openinspect.automations.signatures import sign_hmac_sha256

DEFAULT_TIMEOUT_S = 10.0
USER_AGENT = "Sentry/fake"


@dataclass(frozen=True)
class SentryDelivery:
    """What was sent and what the receiver answered."""

    url: str
    resource: str
    body: bytes
    headers: dict[str, str]
    status_code: int
    response: str


def resource_of(payload: dict[str, Any]) -> str:
    """The ``Sentry-Hook-Resource`` a body built by ``payloads`` belongs to."""
    data = payload.get("data") or {}
    for key, resource in (("metric_alert", "metric_alert"), ("event", "event_alert")):
        if key in data:
            return resource
    return "issue"


def signed_request(
    secret: str,
    payload: dict[str, Any],
    *,
    resource: str | None = None,
    timestamp_s: float | None = None,
    request_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The body bytes and headers of one delivery (``timestamp_s`` defaults to now)."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "Request-ID": request_id or str(uuid.uuid4()),
        "Sentry-Hook-Resource": resource or resource_of(payload),
        "Sentry-Hook-Timestamp": str(int(time.time() if timestamp_s is None else timestamp_s)),
        "Sentry-Hook-Signature": sign_hmac_sha256(secret.encode(), body),
        "User-Agent": USER_AGENT,
    }
    return body, headers


async def send(
    url: str,
    secret: str,
    payload: dict[str, Any],
    *,
    resource: str | None = None,
    timestamp_s: float | None = None,
    client: httpx.AsyncClient | None = None,
) -> SentryDelivery:
    """POST ``payload`` to ``url`` signed with ``secret``; ``client`` (e.g. one on an ASGI
    transport) or a new one. Raises httpx's errors when the receiver cannot be reached."""
    body, headers = signed_request(secret, payload, resource=resource, timestamp_s=timestamp_s)
    if client is None:
        async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT_S) as own:
            answer = await own.post(url, content=body, headers=headers)
    else:
        answer = await client.post(url, content=body, headers=headers)
    return SentryDelivery(
        url, headers["Sentry-Hook-Resource"], body, headers, answer.status_code, answer.text
    )


def send_sync(
    url: str,
    secret: str,
    payload: dict[str, Any],
    *,
    resource: str | None = None,
    timestamp_s: float | None = None,
) -> SentryDelivery:
    """:func:`send` for a caller without an event loop (the command line)."""
    body, headers = signed_request(secret, payload, resource=resource, timestamp_s=timestamp_s)
    answer = httpx.post(url, content=body, headers=headers, timeout=DEFAULT_TIMEOUT_S)
    return SentryDelivery(
        url, headers["Sentry-Hook-Resource"], body, headers, answer.status_code, answer.text
    )
