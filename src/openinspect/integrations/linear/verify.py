"""The Linear webhook's first step: a body signed by Linear, recent, and well formed.

``Linear-Signature`` is ``hex(HMAC-SHA256(webhook secret, raw body))``, compared in constant
time; then the body's ``webhookTimestamp`` (unix ms) must be within
``linear.timestamp_tolerance_s`` of our clock, either way (Linear's advice: a minute), so a
captured delivery cannot be replayed later. Every refusal is 401 with a stable code
(``signature_missing``, ``signature_invalid``, ``timestamp_stale``) and a message that names no
header value and no byte of the body. The body cap (``linear.event_max_bytes``) is the
body-size middleware's (413, before the body is read).

A verified body is then parsed (:func:`parse`): an ``AgentSessionEvent`` we act on, None for
another event type Linear may send the app (acknowledged and dropped), 400 for a body that is
not what Linear sends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from pydantic import ValidationError

from openinspect.errors import BodyNotJson, SignatureInvalid, SignatureMissing, TimestampStale
from openinspect.integrations.linear.events import EVENT, AgentSessionEvent
from openinspect.settings import LinearSettings

SIGNATURE_HEADER = "linear-signature"
DELIVERY_HEADER = "linear-delivery"
EVENT_HEADER = "linear-event"
SIGNATURE_MAX = 128
DELIVERY_MAX = 100
_SIGNED_HINT = (
    "Requests to this URL must come from Linear, signed with the app's webhook secret "
    "(linear.webhook_secret)"
)


def signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(
    settings: LinearSettings, headers: Mapping[str, str], body: bytes, *, now_s: float | None = None
) -> None:
    """Raise a 401 error unless ``body`` is signed with the webhook secret, recently."""
    if settings.webhook_secret is None:
        raise SignatureInvalid("This server has no Linear webhook secret", hint=_SIGNED_HINT)
    given = headers.get(SIGNATURE_HEADER)
    if not given:
        raise SignatureMissing("The request has no Linear-Signature", hint=_SIGNED_HINT)
    expected = signature(settings.webhook_secret.get_secret_value(), body)
    if len(given) > SIGNATURE_MAX or not hmac.compare_digest(
        expected.encode(), given.strip().lower().encode()
    ):
        raise SignatureInvalid("The request's Linear signature is not valid", hint=_SIGNED_HINT)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _malformed() from exc
    stamp_ms = data.get("webhookTimestamp") if isinstance(data, dict) else None
    now = time.time() if now_s is None else now_s
    if not isinstance(stamp_ms, int | float) or isinstance(stamp_ms, bool):
        raise TimestampStale(
            "The request has no webhookTimestamp", hint="Linear sends one with every delivery"
        )
    if abs(now - stamp_ms / 1000) > settings.timestamp_tolerance_s:
        raise TimestampStale(
            "The request's webhookTimestamp is too far from this server's clock",
            hint="Linear sends deliveries with the current time; check the server's clock",
        )


def delivery_id(headers: Mapping[str, str]) -> str:
    """``Linear-Delivery``: the dedupe key (400 when it is missing or too long)."""
    found = headers.get(DELIVERY_HEADER, "").strip()
    if not found or len(found) > DELIVERY_MAX:
        raise BodyNotJson(
            "The request's Linear-Delivery is missing or too long",
            hint="This URL takes only Linear's own requests",
        )
    return found


def parse(body: bytes) -> AgentSessionEvent | None:
    """An ``AgentSessionEvent``; None for another event type (``Issue``, ``Comment``…)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _malformed() from exc
    if not isinstance(data, dict):
        raise _malformed()
    if data.get("type") != EVENT:
        return None
    try:
        return AgentSessionEvent.model_validate(data)
    except ValidationError as exc:
        raise _malformed() from exc


def _malformed() -> BodyNotJson:
    return BodyNotJson(
        "The request is not a Linear agent session event",
        hint="This URL takes only Linear's own requests",
    )
