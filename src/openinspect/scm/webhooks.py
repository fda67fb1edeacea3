"""GitHub webhook signatures: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``.

The HMAC is over the raw request body with the App's webhook secret; the comparison is constant
time (``automations.signatures``, shared with the automation doors). Only the SHA-256 header is
accepted (the legacy SHA-1 ``X-Hub-Signature`` is not). Refusals are ``WebhookSignatureInvalid``
(``webhook_signature_invalid``), with GitHub's own hints.
"""

from __future__ import annotations

from openinspect.automations.signatures import check_hmac_sha256, sign_hmac_sha256
from openinspect.errors import WebhookSignatureInvalid

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return _PREFIX + sign_hmac_sha256(secret, body)


def verify_signature(secret: bytes, body: bytes, header: str | None) -> None:
    """Return if ``header`` signs ``body`` with ``secret``; else raise WebhookSignatureInvalid
    saying whether the header was missing, malformed or wrong."""
    if not secret:
        raise WebhookSignatureInvalid(
            "No webhook secret is configured, so no delivery can be verified",
            hint="Set OPENINSPECT_GITHUB__WEBHOOK_SECRET to the App's webhook secret",
        )
    verdict = check_hmac_sha256(secret, body, header, prefix=True)
    if verdict == "missing":
        raise WebhookSignatureInvalid(
            f"The delivery has no {SIGNATURE_HEADER} header",
            hint="Set a webhook secret in the GitHub App so deliveries are signed",
        )
    if verdict == "malformed":
        value = (header or "").strip()
        raise WebhookSignatureInvalid(
            f"{SIGNATURE_HEADER} is malformed: expected 'sha256=' and 64 hex digits, "
            f"got {value[:16]!r}…"
        )
    if verdict == "mismatch":
        raise WebhookSignatureInvalid(
            f"{SIGNATURE_HEADER} does not match the body",
            hint="The webhook secret here and in the GitHub App must be the same",
        )
