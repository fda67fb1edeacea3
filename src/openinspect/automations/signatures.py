"""Webhook authentication for automations: bearer secrets, HMAC-SHA256 headers, Sentry's
signature and timestamp. Pure: no store, no clock of its own, no I/O.

- :func:`generate_secret`: 32 random bytes, base64url without padding (43 characters), shown to
  the automation's owner once; :func:`hash_secret` is what is stored for a bearer secret.
- :func:`verify_bearer_hash` / :func:`verify_bearer`: an ``Authorization: Bearer <secret>``
  header against the stored SHA-256 hash, or against the secret itself (decrypted from storage).
- :func:`verify_hmac_sha256`: a header carrying the hex HMAC-SHA256 of the raw body, as
  ``sha256=<hex>`` or bare ``<hex>``, under a header name the automation chooses.
- :func:`verify_sentry`: ``Sentry-Hook-Signature`` (the bare hex HMAC-SHA256 of the raw body keyed
  with the integration's client secret) and ``Sentry-Hook-Timestamp`` (Unix time in seconds, as
  Sentry sends it), refused if further than ``tolerance_s`` (5 minutes) from ``now``.
- :func:`check_hmac_sha256`: the comparison alone, as a verdict, for a door with its own errors
  (GitHub's ``scm.webhooks``).

Every comparison is constant time (``hmac.compare_digest`` over equal-length digests). A refusal
raises a subclass of :class:`~openinspect.errors.WebhookSignatureInvalid` (401), so a door catches
one type; its ``code`` says which: ``signature_missing`` (no header, or an empty one),
``signature_invalid`` (malformed or wrong), ``timestamp_stale`` (Sentry's timestamp missing,
unreadable or outside the tolerance). Messages name the header, never the secret or the body.

Sentry signs the body only, not the timestamp, so the timestamp check narrows replays of a
captured delivery to senders who also rewrite that header; the run's key (one Sentry issue, one
run) is what makes a replay harmless.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
from typing import Literal

from openinspect.errors import SignatureInvalid, SignatureMissing, TimestampStale

SECRET_BYTES = 32
DEFAULT_SIGNATURE_HEADER = "X-Signature-256"
SENTRY_SIGNATURE_HEADER = "Sentry-Hook-Signature"
SENTRY_TIMESTAMP_HEADER = "Sentry-Hook-Timestamp"
SENTRY_TOLERANCE_S = 300.0
_SHA256_PREFIX = "sha256="
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
_TIMESTAMP_RE = re.compile(r"^\d{1,12}(?:\.\d{1,9})?$")
_BEARER_RE = re.compile(r"^Bearer[ \t]+(\S+)[ \t]*$", re.IGNORECASE)
_SECRET_MAX = 512
_SHOWN = 16

_FORMS = {
    True: "'sha256=' and 64 hex digits",
    False: "64 hex digits",
    None: "64 hex digits, optionally after 'sha256='",
}

HmacCheck = Literal["ok", "missing", "malformed", "mismatch"]


def generate_secret() -> str:
    """A new secret: :data:`SECRET_BYTES` random bytes, base64url without padding."""
    return base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()


def hash_secret(secret: str) -> str:
    """The hex SHA-256 of ``secret``: what is stored for a bearer secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def sign_hmac_sha256(secret: bytes, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` keyed with ``secret`` (what Sentry sends, and what a
    generic sender sends after ``sha256=``)."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _presented(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise SignatureMissing(
            "The request has no Authorization header",
            hint="Send the automation's secret as Authorization: Bearer <secret>",
        )
    found = _BEARER_RE.match(authorization.strip())
    if found is None or len(found.group(1)) > _SECRET_MAX:
        raise SignatureInvalid(
            "The Authorization header is not a bearer secret",
            hint="Send the automation's secret as Authorization: Bearer <secret>",
        )
    return found.group(1)


def _wrong_secret() -> SignatureInvalid:
    return SignatureInvalid(
        "The bearer secret is not this automation's",
        hint="Use the secret shown when the automation was created, or rotate it",
    )


def verify_bearer_hash(authorization: str | None, stored_sha256: str) -> None:
    """Return if ``authorization`` is ``Bearer <secret>`` whose SHA-256 is ``stored_sha256``
    (hex, from :func:`hash_secret`); else raise SignatureMissing or SignatureInvalid."""
    presented = _presented(authorization)
    if not hmac.compare_digest(hash_secret(presented).encode(), stored_sha256.lower().encode()):
        raise _wrong_secret()


def verify_bearer(authorization: str | None, secret: str) -> None:
    """Like :func:`verify_bearer_hash`, against the secret itself (both sides are hashed first,
    so the comparison takes the same time whatever their lengths)."""
    if not secret:
        raise ValueError("an empty secret verifies nothing")
    presented = _presented(authorization)
    if not hmac.compare_digest(hash_secret(presented).encode(), hash_secret(secret).encode()):
        raise _wrong_secret()


def check_hmac_sha256(
    secret: bytes, body: bytes, value: str | None, *, prefix: bool | None = None
) -> HmacCheck:
    """Whether ``value`` is the HMAC-SHA256 of ``body`` under ``secret``, in hex (any case).
    ``prefix``: True requires ``sha256=``, False forbids it, None accepts both."""
    if value is None or not value.strip():
        return "missing"
    digest = value.strip()
    has_prefix = digest[: len(_SHA256_PREFIX)].lower() == _SHA256_PREFIX
    if (prefix is True and not has_prefix) or (prefix is False and has_prefix):
        return "malformed"
    digest = (digest[len(_SHA256_PREFIX) :] if has_prefix else digest).lower()
    if not _HEX_RE.match(digest):
        return "malformed"
    if not hmac.compare_digest(sign_hmac_sha256(secret, body).encode(), digest.encode()):
        return "mismatch"
    return "ok"


def verify_hmac_sha256(
    secret: bytes,
    body: bytes,
    value: str | None,
    *,
    header: str = DEFAULT_SIGNATURE_HEADER,
    prefix: bool | None = None,
) -> None:
    """Return if ``value`` (the ``header`` header's) signs the raw ``body`` with ``secret``;
    else raise SignatureMissing or SignatureInvalid saying whether it was absent, malformed or
    wrong. ``prefix`` as in :func:`check_hmac_sha256`."""
    if not secret:
        raise ValueError("an empty secret verifies nothing")
    verdict = check_hmac_sha256(secret, body, value, prefix=prefix)
    if verdict == "missing":
        raise SignatureMissing(
            f"The request has no {header} header",
            hint=f"Sign the raw body with HMAC-SHA256 and the automation's secret, in {header}",
        )
    if verdict == "malformed":
        # The sender's value is not echoed: it may be a secret sent in the wrong header.
        raise SignatureInvalid(
            f"{header} is malformed: expected {_FORMS[prefix]}, "
            f"not these {len((value or '').strip())} characters"
        )
    if verdict == "mismatch":
        raise SignatureInvalid(
            f"{header} does not match the body",
            hint="Sign the exact bytes sent, with the secret shown when the automation was made",
        )


def verify_sentry(
    client_secret: bytes,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now_s: float,
    tolerance_s: float = SENTRY_TOLERANCE_S,
) -> None:
    """Return if a Sentry delivery is authentic: ``signature`` (``Sentry-Hook-Signature``) is
    the bare hex HMAC-SHA256 of ``body`` with ``client_secret``, and ``timestamp``
    (``Sentry-Hook-Timestamp``, Unix seconds, a fraction allowed) is within ``tolerance_s`` of
    ``now_s`` (the caller's clock, Unix seconds). The signature is checked first."""
    verify_hmac_sha256(client_secret, body, signature, header=SENTRY_SIGNATURE_HEADER, prefix=False)
    if timestamp is None or not timestamp.strip():
        raise TimestampStale(
            f"The delivery has no {SENTRY_TIMESTAMP_HEADER} header",
            hint="Sentry sends it with every webhook; check a proxy does not drop it",
        )
    if not _TIMESTAMP_RE.match(timestamp.strip()):
        raise TimestampStale(
            f"{SENTRY_TIMESTAMP_HEADER} is not Unix time in seconds: got {_shown(timestamp)}"
        )
    sent_s = float(timestamp.strip())
    skew_s = now_s - sent_s
    if not math.isfinite(skew_s) or abs(skew_s) > tolerance_s:
        side = "old" if skew_s > 0 else "in the future"
        raise TimestampStale(
            f"{SENTRY_TIMESTAMP_HEADER} is {abs(skew_s):.0f}s {side}; at most "
            f"{tolerance_s:.0f}s is accepted",
            hint="Check this server's clock, or that the delivery is not a replay",
        )


def _shown(value: str) -> str:
    """A header value quoted for a message, cut short (it is the sender's text)."""
    value = value.strip()
    return repr(value[:_SHOWN]) + ("…" if len(value) > _SHOWN else "")
