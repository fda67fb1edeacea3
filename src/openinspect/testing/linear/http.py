"""Reading requests at the fake Linear's doors: capped bodies (``testing.doors``), bearer
tokens, OAuth forms and HTTP Basic client credentials."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl

from starlette.requests import Request

from openinspect.testing.doors import TooLarge, read_body

__all__ = ["TooLarge", "basic_credentials", "bearer", "parse_form", "read_body"]

MAX_TOKEN_CHARS = 512


def bearer(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (None when absent or malformed)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > MAX_TOKEN_CHARS:
        return None
    return value


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """``(client_id, client_secret)`` from ``Authorization: Basic …``, if given."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or len(value) > MAX_TOKEN_CHARS:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def parse_form(body: bytes) -> dict[str, str] | None:
    """An ``application/x-www-form-urlencoded`` body (None when it is not one); a repeated
    field is refused, as a confusing request should be."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        return None
    form = dict(pairs)
    return form if len(form) == len(pairs) else None
