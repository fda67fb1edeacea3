"""Sending webhooks as Linear does.

Each delivery is a JSON POST to the registered URL with ``Linear-Signature`` (the hex
HMAC-SHA256 of the exact body bytes with the webhook's secret), ``Linear-Delivery`` (a UUID,
the receiver's dedupe key), ``Linear-Event`` (the resource type) and a ``webhookTimestamp``
(unix ms) inside the body. A 2xx within ``timeout_s`` is success; anything else is retried,
``attempts`` tries in all, ``retry_delay_s`` apart, with the same bytes and headers (Linear's
own retry schedule is not documented; at least once is what it promises).

One worker thread sends everything in order (``testing.deliveries.DeliveryQueue``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from openinspect.testing.deliveries import DeliveryQueue
from openinspect.testing.linear.records import Attempt, Delivery, encode

USER_AGENT = "Linear-Webhook"
MAX_RESPONSE_CHARS = 64 * 1024
DEFAULT_ATTEMPTS = 3
DEFAULT_RETRY_DELAY_S = 0.5
DEFAULT_TIMEOUT_S = 5.0
"""Linear asks receivers to answer within 5 seconds."""


def sign(secret: str, body: bytes) -> str:
    """``Linear-Signature``: ``hex(HMAC-SHA256(secret, body))`` over the raw body bytes."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers_for(
    secret: str, raw: bytes, *, event: str, delivery_id: str, signature: str | None = None
) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Linear-Delivery": delivery_id,
        "Linear-Event": event,
        "Linear-Signature": signature if signature is not None else sign(secret, raw),
    }


def build(
    body: dict[str, Any],
    secret: str,
    *,
    event: str,
    delivery_id: str | None = None,
    signature: str | None = None,
) -> Delivery:
    """A delivery record for ``body`` (encoded once: the bytes signed are the bytes sent)."""
    raw = encode(body)
    delivery_id = delivery_id or str(uuid.uuid4())
    return Delivery(
        id=delivery_id,
        event=event,
        action=str(body.get("action", "")),
        body=body,
        raw=raw,
        headers=headers_for(secret, raw, event=event, delivery_id=delivery_id, signature=signature),
    )


@dataclass
class Policy:
    """How deliveries are tried; change the fields at any time (read per delivery)."""

    attempts: int = DEFAULT_ATTEMPTS
    retry_delay_s: float = DEFAULT_RETRY_DELAY_S
    timeout_s: float = DEFAULT_TIMEOUT_S


class Deliverer(DeliveryQueue[Delivery]):
    name = "fake-linear"

    def __init__(self, url: Callable[[], str | None], policy: Policy) -> None:
        super().__init__()
        self.url = url
        self.policy = policy

    def _label(self, record: Delivery) -> str:
        return record.action

    def _deliver(self, record: Delivery) -> None:
        policy = self.policy
        for n in range(max(policy.attempts, 1)):
            if n and self._stopping.wait(policy.retry_delay_s):
                return
            if self._stopping.is_set():
                return
            attempt = self._attempt(record, policy.timeout_s)
            self._record_attempt(record, attempt)
            if attempt.ok or attempt.result == "no_receiver":
                return

    def _attempt(self, record: Delivery, timeout_s: float) -> Attempt:
        start, at = time.monotonic(), time.time()
        url = self.url()
        if url is None or self._http is None:
            return Attempt("no_receiver", 0.0, at)
        try:
            response = self._http.post(
                url, content=record.raw, headers=record.headers, timeout=timeout_s
            )
        except httpx.TimeoutException:
            return Attempt("timeout", time.monotonic() - start, at)
        except httpx.HTTPError:
            return Attempt("connection_failed", time.monotonic() - start, at)
        text = response.text[:MAX_RESPONSE_CHARS]
        return Attempt(response.status_code, time.monotonic() - start, at, text)
