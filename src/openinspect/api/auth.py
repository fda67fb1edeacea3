"""Authentication: bearer API tokens for REST, short-lived session-scoped tokens for WebSockets,
and the first-start bootstrap of an admin user.

API tokens are random, stored hashed (see ``store.users``). WebSocket tokens are signed:
``<payload>.<HMAC-SHA256>`` over ``{session, user, parent token, expiry}`` with a server secret
kept (0600) in the home directory, so any replica sharing the home or secret can check them. A
valid signature is not enough: the socket also checks, in the database, that the parent token is
still live and that the user may see the session (``api.ws``), so revoking the parent voids every
WebSocket token minted from it on every replica.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from openinspect.domain.models import User
from openinspect.errors import AuthError, ForbiddenError
from openinspect.store import Store
from openinspect.store.crypto import write_private_file

ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name
SECRET_FILE = "secret.key"  # noqa: S105 - a file name
_SECRET_BYTES = 32


_write_private = write_private_file


def load_or_create_secret(home: Path) -> bytes:
    path = home / SECRET_FILE
    if path.exists():
        return path.read_bytes()
    secret = secrets.token_bytes(_SECRET_BYTES)
    _write_private(path, secret)
    return secret


def _git_identity() -> tuple[str, str]:
    def config(key: str) -> str:
        try:
            out = subprocess.run(
                ["git", "config", "--global", key],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.strip()

    return config("user.name") or "Admin", config("user.email") or "admin@localhost"


@dataclass(frozen=True)
class Bootstrap:
    user: User | None
    token: str | None  # set when the token file exists (created now or before)
    created: bool


async def bootstrap_admin(store: Store, home: Path) -> Bootstrap:
    """On the first start, create an admin user and token, and keep the token in a 0600 file in
    home for the CLI on this machine."""
    token_path = home / ADMIN_TOKEN_FILE
    if await store.users.count() > 0:
        token = token_path.read_text().strip() if token_path.exists() else None
        return Bootstrap(None, token, False)
    name, email = _git_identity()
    user = await store.users.create(name=name, email=email, role="admin")
    token = await store.users.create_token(user.id, "admin (created on first start)")
    _write_private(token_path, token.encode() + b"\n")
    return Bootstrap(user, token, True)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class WsClaims:
    """What a valid WebSocket token says: who, and which API token it was minted from."""

    user_id: str
    token_id: str


WS_TOKEN_MAX_CHARS = 2048


class WsTokens:
    def __init__(self, secret: bytes, ttl_s: int) -> None:
        self._secret = secret
        self._ttl_s = ttl_s

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def mint(self, session_id: str, user_id: str, token_id: str) -> tuple[str, int]:
        """A token for one user on one session, bound to the API token ``token_id`` it was
        minted with. Returns it and its expiry (unix seconds)."""
        expires = int(time.time()) + self._ttl_s
        claims = {"s": session_id, "u": user_id, "t": token_id, "e": expires}
        payload = _b64(json.dumps(claims).encode())
        return f"{payload}.{self._sign(payload)}", expires

    def verify(self, token: str, session_id: str) -> WsClaims:
        """The claims of a valid token for ``session_id``; raises ``AuthError`` otherwise —
        for any string at all (non-ASCII, not base64, not JSON, wrong shapes)."""
        invalid = AuthError("Invalid WebSocket token", hint="Mint one with POST .../ws-token")
        if not token.isascii() or len(token) > WS_TOKEN_MAX_CHARS:
            raise invalid
        payload, _, signature = token.partition(".")
        if not payload or not hmac.compare_digest(signature, self._sign(payload)):
            raise invalid
        try:
            claims = json.loads(_unb64(payload))
        except ValueError as exc:
            raise invalid from exc
        if not isinstance(claims, dict):
            raise invalid
        user_id, token_id, expires = claims.get("u"), claims.get("t"), claims.get("e")
        if not (isinstance(user_id, str) and isinstance(token_id, str)):
            raise invalid  # also tokens minted before they were bound to their parent
        if claims.get("s") != session_id:
            raise ForbiddenError("This WebSocket token is for another session")
        if not isinstance(expires, int) or expires < time.time():
            raise AuthError("The WebSocket token has expired", hint="Mint a new one")
        return WsClaims(user_id, token_id)
