"""Automation webhook authentication: bearer secrets, HMAC-SHA256 headers, Sentry's signature
and timestamp. Known-answer vectors come from RFC 4231 and GitHub's documentation, so the HMAC
is checked against values computed elsewhere, not against this module's own output."""

from __future__ import annotations

import base64
import hashlib
import string

import pytest

from openinspect.automations.signatures import (
    SECRET_BYTES,
    SENTRY_TOLERANCE_S,
    check_hmac_sha256,
    generate_secret,
    hash_secret,
    sign_hmac_sha256,
    verify_bearer,
    verify_bearer_hash,
    verify_hmac_sha256,
    verify_sentry,
)
from openinspect.errors import (
    SignatureInvalid,
    SignatureMissing,
    TimestampStale,
    WebhookSignatureInvalid,
)

# RFC 4231, test case 2.
RFC_KEY, RFC_BODY = b"Jefe", b"what do ya want for nothing?"
RFC_HMAC = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
# GitHub's "Validating webhook deliveries" example.
GH_KEY, GH_BODY = b"It's a Secret to Everybody", b"Hello, World!"
GH_HMAC = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
NOW = 1_764_676_800.0  # 2025-12-02T12:00:00Z


def test_a_generated_secret_is_32_random_bytes_in_base64url() -> None:
    secrets = {generate_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert len(secret) == 43 and "=" not in secret
        assert set(secret) <= set(string.ascii_letters + string.digits + "-_")
        assert len(base64.urlsafe_b64decode(secret + "=")) == SECRET_BYTES


def test_the_stored_hash_is_the_sha256_of_the_secret() -> None:
    assert hash_secret("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2
    )


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_a_bearer_secret_verifies_against_its_hash_and_itself(scheme: str) -> None:
    secret = generate_secret()
    verify_bearer_hash(f"{scheme} {secret}", hash_secret(secret))
    verify_bearer_hash(f"  {scheme}\t{secret} ", hash_secret(secret).upper())
    verify_bearer(f"{scheme} {secret}", secret)


@pytest.mark.parametrize(
    ("authorization", "error", "code"),
    [
        (None, SignatureMissing, "signature_missing"),
        ("", SignatureMissing, "signature_missing"),
        ("   ", SignatureMissing, "signature_missing"),
        ("Basic dXNlcjpwYXNz", SignatureInvalid, "signature_invalid"),
        ("Bearer", SignatureInvalid, "signature_invalid"),
        ("Bearer a b", SignatureInvalid, "signature_invalid"),
        ("Bearer " + "x" * 600, SignatureInvalid, "signature_invalid"),
        ("Bearer wrong-secret", SignatureInvalid, "signature_invalid"),
    ],
)
def test_a_bad_bearer_secret_is_refused_with_a_code(
    authorization: str | None, error: type[WebhookSignatureInvalid], code: str
) -> None:
    secret = generate_secret()
    for verify in (
        lambda: verify_bearer_hash(authorization, hash_secret(secret)),
        lambda: verify_bearer(authorization, secret),
    ):
        with pytest.raises(error) as info:
            verify()
        assert info.value.code == code and info.value.status == 401
        assert secret not in str(info.value)


def test_the_secret_with_one_character_changed_is_refused() -> None:
    secret = generate_secret()
    changed = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    with pytest.raises(SignatureInvalid, match="not this automation's"):
        verify_bearer(f"Bearer {changed}", secret)
    with pytest.raises(SignatureInvalid):
        verify_bearer_hash(f"Bearer {secret}", hash_secret(changed))


def test_hmac_matches_known_answers() -> None:
    assert sign_hmac_sha256(RFC_KEY, RFC_BODY) == RFC_HMAC
    assert sign_hmac_sha256(GH_KEY, GH_BODY) == GH_HMAC


@pytest.mark.parametrize(
    "value",
    [RFC_HMAC, RFC_HMAC.upper(), "sha256=" + RFC_HMAC, "SHA256=" + RFC_HMAC, f" {RFC_HMAC} "],
)
def test_an_hmac_header_in_either_form_verifies(value: str) -> None:
    verify_hmac_sha256(RFC_KEY, RFC_BODY, value)
    assert check_hmac_sha256(RFC_KEY, RFC_BODY, value) == "ok"


@pytest.mark.parametrize(
    ("value", "prefix", "verdict"),
    [
        (None, None, "missing"),
        ("", None, "missing"),
        (RFC_HMAC[:-1], None, "malformed"),
        (RFC_HMAC + "0", None, "malformed"),
        ("sha1=" + hashlib.sha1(RFC_BODY).hexdigest(), None, "malformed"),
        ("sha512=" + RFC_HMAC, None, "malformed"),
        ("z" * 64, None, "malformed"),
        (RFC_HMAC, True, "malformed"),  # a bare digest where the prefix is required
        ("sha256=" + RFC_HMAC, False, "malformed"),  # a prefix where it is forbidden
        (GH_HMAC, None, "mismatch"),
        ("sha256=" + GH_HMAC, True, "mismatch"),
        (RFC_HMAC, False, "ok"),
        ("sha256=" + RFC_HMAC, True, "ok"),
    ],
)
def test_hmac_verdicts(value: str | None, prefix: bool | None, verdict: str) -> None:
    assert check_hmac_sha256(RFC_KEY, RFC_BODY, value, prefix=prefix) == verdict


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (None, SignatureMissing, "has no X-Acme-Signature header"),
        ("sha256=abc", SignatureInvalid, "X-Acme-Signature is malformed: expected 64 hex"),
        (GH_HMAC, SignatureInvalid, "X-Acme-Signature does not match the body"),
    ],
)
def test_a_bad_hmac_header_names_the_header(
    value: str | None, error: type[WebhookSignatureInvalid], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        verify_hmac_sha256(RFC_KEY, RFC_BODY, value, header="X-Acme-Signature")
    assert info.value.status == 401


def test_a_changed_body_or_secret_does_not_verify() -> None:
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_hmac_sha256(RFC_KEY, RFC_BODY + b" ", RFC_HMAC)
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_hmac_sha256(b"Jeff", RFC_BODY, RFC_HMAC)
    with pytest.raises(ValueError, match="empty secret"):
        verify_hmac_sha256(b"", RFC_BODY, sign_hmac_sha256(b"", RFC_BODY))
    with pytest.raises(ValueError, match="empty secret"):
        verify_bearer("Bearer x", "")


@pytest.mark.parametrize(
    "timestamp", [str(int(NOW)), str(int(NOW) - 299), str(int(NOW) + 299), f"{NOW - 10:.3f}"]
)
def test_a_sentry_delivery_within_the_tolerance_verifies(timestamp: str) -> None:
    verify_sentry(RFC_KEY, RFC_BODY, RFC_HMAC, timestamp, now_s=NOW)


@pytest.mark.parametrize(
    ("signature", "timestamp", "error", "message"),
    [
        (None, str(int(NOW)), SignatureMissing, "has no Sentry-Hook-Signature"),
        ("sha256=" + RFC_HMAC, str(int(NOW)), SignatureInvalid, "malformed"),  # Sentry: bare hex
        (GH_HMAC, str(int(NOW)), SignatureInvalid, "does not match"),
        (RFC_HMAC, None, TimestampStale, "has no Sentry-Hook-Timestamp"),
        (RFC_HMAC, "", TimestampStale, "has no Sentry-Hook-Timestamp"),
        (RFC_HMAC, "yesterday", TimestampStale, "not Unix time in seconds"),
        (RFC_HMAC, "-5", TimestampStale, "not Unix time in seconds"),
        (RFC_HMAC, "1e9", TimestampStale, "not Unix time in seconds"),
        (RFC_HMAC, "nan", TimestampStale, "not Unix time in seconds"),
        (RFC_HMAC, str(int(NOW * 1000)), TimestampStale, "not Unix time in seconds"),  # ms
        (RFC_HMAC, str(int(NOW) - 301), TimestampStale, "301s old; at most 300s"),
        (RFC_HMAC, str(int(NOW) + 301), TimestampStale, "301s in the future"),
    ],
)
def test_a_bad_sentry_delivery_is_refused_with_a_code(
    signature: str | None,
    timestamp: str | None,
    error: type[WebhookSignatureInvalid],
    message: str,
) -> None:
    with pytest.raises(error, match=message) as info:
        verify_sentry(RFC_KEY, RFC_BODY, signature, timestamp, now_s=NOW)
    assert info.value.status == 401
    assert isinstance(info.value, WebhookSignatureInvalid)


def test_the_sentry_tolerance_is_five_minutes_by_default_and_configurable() -> None:
    assert SENTRY_TOLERANCE_S == 300
    old = str(int(NOW) - 3600)
    verify_sentry(RFC_KEY, RFC_BODY, RFC_HMAC, old, now_s=NOW, tolerance_s=7200)
    with pytest.raises(TimestampStale):
        verify_sentry(RFC_KEY, RFC_BODY, RFC_HMAC, old, now_s=NOW)


def test_a_forged_signature_is_refused_before_the_timestamp_is_read() -> None:
    with pytest.raises(SignatureInvalid):
        verify_sentry(RFC_KEY, RFC_BODY, GH_HMAC, "garbage", now_s=NOW)
