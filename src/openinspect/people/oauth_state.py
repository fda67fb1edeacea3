"""The ``state`` of the OAuth web flow: signed, expiring, and bound to the browser that started it.

``mint`` returns a state and a random nonce. The nonce goes into a short-lived ``HttpOnly`` cookie
of the browser that started sign-in; the state (sent to GitHub and back in URLs) carries only the
nonce's SHA-256, the ``next`` path, and an expiry, and is HMAC-SHA256-signed with the server secret.
The callback accepts a state only with a valid signature, before its expiry, and from a browser
holding the matching nonce: a sign-in link started by someone else (login CSRF) fails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from openinspect.errors import AuthError

STATE_TTL_S = 600
NEXT_MAX_CHARS = 2000
_NONCE_BYTES = 24
_SIGN_CONTEXT = b"openinspect/oauth-state/v1\x00"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def safe_next(path: str | None) -> str:
    """``path`` if it is a relative path on this site, else ``/``. Refuses absolute and
    scheme-relative URLs (``//evil``, ``/\\evil``) and control characters, so a sign-in link
    cannot send the browser (and its fresh token) elsewhere."""
    if (
        not path
        or len(path) > NEXT_MAX_CHARS
        or not path.startswith("/")
        or path.startswith(("//", "/\\"))
        or any(ord(c) < 0x20 or c in "\\\x7f" for c in path)
    ):
        return "/"
    return path


@dataclass(frozen=True)
class MintedState:
    state: str
    nonce: str
    expires_at: int


class SignedClaims:
    """Short JSON claims with an expiry, HMAC-SHA256-signed with a key of their own (derived
    from the server secret and ``context``, so one kind of signed value never passes as
    another): ``payload.signature``, both URL-safe base64."""

    def __init__(self, secret: bytes, context: bytes) -> None:
        self._key = hmac.new(secret, context, hashlib.sha256).digest()

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def seal(self, claims: dict[str, Any], expires_at: int) -> str:
        payload = _b64(json.dumps(claims | {"e": expires_at}, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def open(self, token: str | None) -> dict[str, Any]:
        """The claims of a value this key signed that has not expired; ``AuthError`` else."""
        payload, _, signature = (token or "").partition(".")
        if not payload or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            raise AuthError("The state is missing or was not issued by this server")
        try:
            claims = json.loads(_unb64(payload))
            expires = int(claims["e"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthError("The state is malformed") from exc
        if not isinstance(claims, dict):
            raise AuthError("The state is malformed")
        if expires < time.time():
            raise AuthError("This took too long; the state expired")
        return claims


class OAuthState:
    def __init__(self, secret: bytes, ttl_s: int = STATE_TTL_S) -> None:
        self._signer = SignedClaims(secret, _SIGN_CONTEXT)
        self.ttl_s = ttl_s

    def mint(self, next_path: str | None) -> MintedState:
        nonce = secrets.token_urlsafe(_NONCE_BYTES)
        expires = int(time.time()) + self.ttl_s
        claims = {"n": _b64(hashlib.sha256(nonce.encode()).digest()), "x": safe_next(next_path)}
        return MintedState(self._signer.seal(claims, expires), nonce, expires)

    def verify(self, state: str | None, nonce: str | None) -> str:
        """The ``next`` path of a valid state from the browser holding ``nonce``; raises
        ``AuthError`` otherwise."""
        try:
            claims = self._signer.open(state)
        except AuthError as exc:
            raise AuthError(f"Sign-in failed: {exc.message}") from None
        nonce_hash, next_path = claims.get("n"), claims.get("x")
        if not isinstance(nonce_hash, str):
            raise AuthError("The sign-in state is malformed")
        presented = _b64(hashlib.sha256((nonce or "").encode()).digest())
        if not nonce or not hmac.compare_digest(presented.encode(), nonce_hash.encode()):
            raise AuthError("This sign-in was started in another browser (or cookies are off)")
        return safe_next(next_path if isinstance(next_path, str) else None)
