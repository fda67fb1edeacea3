"""Delivering events and interactions to the app as Slack does.

Events API: a JSON POST signed v0 (``X-Slack-Request-Timestamp``, ``X-Slack-Signature``); a 2xx
within ``ack_timeout_s`` acks it; a non-2xx, a timeout or a refused connection is retried after
``retry_delays_s[i]`` with ``X-Slack-Retry-Num``/``X-Slack-Retry-Reason``, same body, re-signed
with a fresh timestamp; ``X-Slack-No-Retry: 1`` in the answer stops the retries. Interactivity:
a form POST ``payload=<json>``, signed the same way, not retried (Slack shows the user an error
instead). When a Socket Mode client is connected, both go over the socket as envelopes and the
ack is the app's ``{"envelope_id"}`` frame; an unacked envelope is resent with ``retry_attempt``.

One worker thread sends everything in order; the test thread only enqueues, so a receiver on
the test's own event loop is never blocked by the fake.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx

from openinspect.testing.deliveries import DeliveryQueue
from openinspect.testing.slack.records import Attempt, Delivery, DeliveryKind
from openinspect.testing.slack.socket_mode import SocketHub

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
MAX_RESPONSE_CHARS = 64 * 1024


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``v0=hex(HMAC-SHA256(secret, "v0:{timestamp}:{body}"))``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, body: bytes, content_type: str, *, timestamp: str | None = None
) -> dict[str, str]:
    ts = timestamp if timestamp is not None else str(int(time.time()))
    return {
        "Content-Type": content_type,
        "User-Agent": USER_AGENT,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(secret, ts, body),
    }


def encode(kind: DeliveryKind, body: dict[str, Any]) -> tuple[bytes, str]:
    """The HTTP body and content type Slack sends for ``kind``."""
    raw = Delivery(id="", kind=kind, type="", body=body).raw
    if kind == "interaction":
        return urlencode({"payload": raw}).encode(), "application/x-www-form-urlencoded"
    return raw.encode(), "application/json"


class Deliverer(DeliveryQueue[Delivery]):
    name = "fake-slack"

    def __init__(
        self,
        *,
        signing_secret: str,
        hub: SocketHub,
        url_for: Callable[[DeliveryKind], str | None],
        retry_delays_s: Sequence[float],
        ack_timeout_s: float,
    ) -> None:
        super().__init__()
        self.signing_secret = signing_secret
        self.hub = hub
        self.url_for = url_for
        self.retry_delays_s = tuple(retry_delays_s)
        self.ack_timeout_s = ack_timeout_s

    def _label(self, record: Delivery) -> str:
        return record.type

    def enqueue(self, kind: DeliveryKind, type_: str, body: dict[str, Any], id_: str) -> Delivery:
        return self.put(Delivery(id=id_, kind=kind, type=type_, body=body))

    def _deliver(self, record: Delivery) -> None:
        delays = self.retry_delays_s if record.kind == "event" else ()
        envelope_id = str(uuid.uuid4())
        reason: str | None = None
        for n in range(len(delays) + 1):
            if n and self._stopping.wait(delays[n - 1]):
                return
            if self._stopping.is_set():
                return
            attempt, no_retry = self._attempt(record, n, reason, envelope_id)
            self._record_attempt(record, attempt)
            if attempt.acked or no_retry:
                return
            if attempt.result == "timeout":
                reason = "http_timeout" if attempt.via == "http" else "timeout"
            elif attempt.result in ("connection_failed", "no_receiver"):
                reason = "connection_failed"
            else:
                reason = "http_error"

    def _attempt(
        self, record: Delivery, n: int, reason: str | None, envelope_id: str
    ) -> tuple[Attempt, bool]:
        start = time.monotonic()
        if self.hub.connected:
            envelope: dict[str, Any] = {
                "envelope_id": envelope_id,
                "type": "events_api" if record.kind == "event" else "interactive",
                "payload": record.body,
                "accepts_response_payload": False,
            }
            if record.kind == "event":
                envelope.update(retry_attempt=n, retry_reason=reason or "")
            result = self.hub.send(envelope, self.ack_timeout_s)
            seconds = time.monotonic() - start
            return Attempt(result, seconds, "socket", n, reason), False
        url = self.url_for(record.kind)
        if url is None or self._http is None:
            return Attempt("no_receiver", 0.0, "none", n, reason), False
        raw, content_type = encode(record.kind, record.body)
        headers = signed_headers(self.signing_secret, raw, content_type)
        if n:
            headers["X-Slack-Retry-Num"] = str(n)
            headers["X-Slack-Retry-Reason"] = reason or "unknown_error"
        try:
            response = self._http.post(
                url, content=raw, headers=headers, timeout=self.ack_timeout_s
            )
        except httpx.TimeoutException:
            return Attempt("timeout", time.monotonic() - start, "http", n, reason), False
        except httpx.HTTPError:
            return Attempt("connection_failed", time.monotonic() - start, "http", n, reason), False
        with self._cond:
            record.response_body = response.text[:MAX_RESPONSE_CHARS]
        no_retry = response.headers.get("x-slack-no-retry", "") == "1"
        seconds = time.monotonic() - start
        return Attempt(response.status_code, seconds, "http", n, reason), no_retry
