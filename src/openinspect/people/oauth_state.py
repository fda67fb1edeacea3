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


class OAuthState:
    def __init__(self, secret: bytes, ttl_s: int = STATE_TTL_S) -> None:
        # A key of its own, so a state can never pass as another signed token of the server.
        self._key = hmac.new(secret, _SIGN_CONTEXT, hashlib.sha256).digest()
        self.ttl_s = ttl_s

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def mint(self, next_path: str | None) -> MintedState:
        nonce = secrets.token_urlsafe(_NONCE_BYTES)
        expires = int(time.time()) + self.ttl_s
        claims = {"n": _b64(hashlib.sha256(nonce.encode()).digest()), "x": safe_next(next_path)}
        payload = _b64(json.dumps(claims | {"e": expires}, separators=(",", ":")).encode())
        return MintedState(f"{payload}.{self._sign(payload)}", nonce, expires)

    def verify(self, state: str | None, nonce: str | None) -> str:
        """The ``next`` path of a valid state from the browser holding ``nonce``; raises
        ``AuthError`` otherwise."""
        payload, _, signature = (state or "").partition(".")
        if not payload or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            raise AuthError("The sign-in state is missing or was not issued by this server")
        try:
            claims = json.loads(_unb64(payload))
            expires, nonce_hash, next_path = int(claims["e"]), str(claims["n"]), claims["x"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthError("The sign-in state is malformed") from exc
        if expires < time.time():
            raise AuthError("The sign-in took too long; the state expired")
        presented = _b64(hashlib.sha256((nonce or "").encode()).digest())
        if not nonce or not hmac.compare_digest(presented.encode(), nonce_hash.encode()):
            raise AuthError("This sign-in was started in another browser (or cookies are off)")
        return safe_next(next_path if isinstance(next_path, str) else None)
