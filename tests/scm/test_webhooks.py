"""Webhook signatures: GitHub's sha256= HMAC, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from openinspect.errors import WebhookSignatureInvalid
from openinspect.scm.webhooks import sign, verify_signature

SECRET = b"It's a Secret to Everybody"
BODY = b"Hello, World!"
# The example from GitHub's "Validating webhook deliveries" documentation.
GITHUB_EXAMPLE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_sign_matches_githubs_documented_example() -> None:
    assert sign(SECRET, BODY) == GITHUB_EXAMPLE
    verify_signature(SECRET, BODY, GITHUB_EXAMPLE)
    verify_signature(SECRET, BODY, GITHUB_EXAMPLE.upper().replace("SHA256=", "sha256="))


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "has no X-Hub-Signature-256"),
        ("", "has no X-Hub-Signature-256"),
        ("sha1=" + hashlib.sha1(BODY).hexdigest(), "malformed"),
        ("sha256=abc", "malformed"),
        ("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "malformed"),
        ("sha256=" + hmac.new(b"other", BODY, hashlib.sha256).hexdigest(), "does not match"),
    ],
)
def test_bad_signatures_are_refused_with_the_reason(header: str | None, reason: str) -> None:
    with pytest.raises(WebhookSignatureInvalid, match=reason) as info:
        verify_signature(SECRET, BODY, header)
    assert info.value.status == 401


def test_a_changed_body_does_not_verify() -> None:
    with pytest.raises(WebhookSignatureInvalid, match="does not match"):
        verify_signature(SECRET, BODY + b" ", sign(SECRET, BODY))


def test_without_a_secret_nothing_verifies() -> None:
    with pytest.raises(WebhookSignatureInvalid, match="No webhook secret"):
        verify_signature(b"", BODY, sign(b"", BODY))
