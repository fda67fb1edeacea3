"""The Slack doors' first step: a request signed by Slack, recent, and well formed.

Signature v0 (``slack_sdk.signature.SignatureVerifier``): ``X-Slack-Signature`` is
``v0=hex(HMAC-SHA256(signing secret, "v0:{X-Slack-Request-Timestamp}:{raw body}"))``, checked in
constant time; then the timestamp must be within ``slack.timestamp_tolerance_s`` of our clock
(a replayed delivery is refused once it is older). Every refusal is 401 with a stable code
(``signature_missing``, ``signature_invalid``, ``timestamp_stale``) and one message that names
no header value and no byte of the body. The body cap (``slack.event_max_bytes``) is the
body-size middleware's (413, before the body is read).

A verified body is then parsed: the Events API's JSON (:func:`parse_event`), interactivity's
form field ``payload`` (:func:`parse_interaction`); a body that is not what Slack sends is 400.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from pydantic import ValidationError
from slack_sdk.signature import SignatureVerifier

from openinspect.errors import BodyNotJson, SignatureInvalid, SignatureMissing, TimestampStale
from openinspect.integrations.slack.events import BlockActions, EventCallback, UrlVerification
from openinspect.settings import SlackSettings

TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"
RETRY_NUM_HEADER = "x-slack-retry-num"
SIGNATURE_MAX = 100
_SIGNED_HINT = (
    "Requests to this URL must come from Slack, signed with the app's signing secret "
    "(slack.signing_secret)"
)


def verify(
    settings: SlackSettings, headers: Mapping[str, str], body: bytes, *, now_s: float | None = None
) -> None:
    """Raise a 401 error unless ``body`` is signed with the signing secret, recently."""
    timestamp = headers.get(TIMESTAMP_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if settings.signing_secret is None:
        raise SignatureInvalid("This server has no Slack signing secret", hint=_SIGNED_HINT)
    if not timestamp or not signature:
        raise SignatureMissing(
            "The request has no Slack signature (X-Slack-Signature, X-Slack-Request-Timestamp)",
            hint=_SIGNED_HINT,
        )
    if not timestamp.isdigit() or len(timestamp) > 12 or len(signature) > SIGNATURE_MAX:
        raise SignatureInvalid("The request's Slack signature is not valid", hint=_SIGNED_HINT)
    verifier = SignatureVerifier(settings.signing_secret.get_secret_value())
    try:
        expected = verifier.generate_signature(timestamp=timestamp, body=body)
    except UnicodeDecodeError:  # Slack signs UTF-8 text; slack_sdk decodes the body first
        expected = None
    if expected is None or not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureInvalid("The request's Slack signature is not valid", hint=_SIGNED_HINT)
    now = time.time() if now_s is None else now_s
    if abs(now - int(timestamp)) > settings.timestamp_tolerance_s:
        raise TimestampStale(
            "The request's Slack timestamp is too far from this server's clock",
            hint="Slack sends requests with the current time; check the server's clock",
        )


def _malformed(what: str) -> BodyNotJson:
    return BodyNotJson(
        f"The request is not a Slack {what}", hint="This URL takes only Slack's own requests"
    )


def parse_event(body: bytes) -> EventCallback | UrlVerification | None:
    """An Events API body; None for an envelope type we do not handle (``app_rate_limited``)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _malformed("event") from exc
    if not isinstance(data, dict):
        raise _malformed("event")
    kind = data.get("type")
    try:
        if kind == "url_verification":
            return UrlVerification.model_validate(data)
        if kind == "event_callback":
            return EventCallback.model_validate(data)
    except ValidationError as exc:
        raise _malformed("event") from exc
    return None


def parse_interaction(body: bytes) -> tuple[BlockActions | None, dict[str, Any]]:
    """An interactivity body (``payload=<JSON>``, form encoded): the ``block_actions`` it
    carries (None for another payload type) and the raw payload."""
    try:
        form = parse_qs(body.decode(), max_num_fields=5, strict_parsing=True)
        raw = json.loads(form["payload"][0])
    except (ValueError, KeyError, IndexError, RecursionError, UnicodeDecodeError) as exc:
        raise _malformed("interaction") from exc
    if not isinstance(raw, dict):
        raise _malformed("interaction")
    if raw.get("type") != "block_actions":
        return None, raw
    try:
        return BlockActions.model_validate(raw), raw
    except ValidationError as exc:
        raise _malformed("interaction") from exc
