"""Encryption at rest for credentials kept in the store (users' OAuth tokens).

AES-256-GCM with a random 96-bit nonce per message; a sealed value is
``base64(nonce ‖ ciphertext ‖ tag)``. Every value is sealed with *associated data* naming its
purpose and row (e.g. ``identity:<user_id>:access``), so a ciphertext copied into another row or
column fails to open instead of handing one user's token to another.

The key is ``auth.encryption_key`` (base64 of 32 bytes) or, when unset, a key generated once into
``$OPENINSPECT_HOME/encryption.key`` (mode 0600). Replicas that do not share a home must share the
setting. Losing the key loses the sealed tokens (people sign in again), nothing else.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from openinspect.errors import ConfigError

KEY_FILE = "encryption.key"
KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_SETTING = "OPENINSPECT_AUTH__ENCRYPTION_KEY"


def write_private_file(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to a file only its owner can read (0600), creating parent directories.
    With ``exclusive``, fail with ``FileExistsError`` if the file exists (two processes racing to
    create a key must not end up with different keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def parse_key(text: str, *, source: str) -> bytes:
    """The raw key from its base64 text; a ``ConfigError`` naming ``source`` otherwise."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(
            f"The encryption key in {source} is not valid base64",
            hint="Generate one with: python -c 'import os,base64;"
            "print(base64.b64encode(os.urandom(32)).decode())'",
        ) from exc
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"The encryption key in {source} is {len(key)} bytes; expected {KEY_BYTES}",
            hint="Use the base64 encoding of exactly 32 random bytes",
        )
    return key


def load_or_create_key(configured: SecretStr | None, home: Path) -> bytes:
    """The key from the setting, else from the key file in home (created on first use)."""
    if configured is not None:
        return parse_key(configured.get_secret_value(), source=_KEY_SETTING)
    path = home / KEY_FILE
    if not path.exists():
        text = base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n"
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            write_private_file(path, text, exclusive=True)
    return parse_key(path.read_text(), source=str(path))


class Sealer:
    """Seals and opens short secrets with AES-256-GCM, bound to a purpose string."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigError(f"An AES-256-GCM key is {KEY_BYTES} bytes; got {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_settings(cls, configured: SecretStr | None, home: Path) -> Sealer:
        return cls(load_or_create_key(configured, home))

    def seal(self, plaintext: str, purpose: str) -> str:
        """``base64(nonce ‖ ciphertext)`` of ``plaintext``, opened only with the same purpose."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), purpose.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, purpose: str) -> str:
        """The plaintext of a sealed value. Raises ``ConfigError`` when it was sealed with
        another key or another purpose, or was altered."""
        try:
            raw = base64.b64decode(sealed, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigError(f"A sealed value for {purpose!r} is not base64") from exc
        if len(raw) < NONCE_BYTES + _TAG_BYTES:
            raise ConfigError(f"A sealed value for {purpose!r} is too short")
        try:
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode())
        except InvalidTag as exc:
            raise ConfigError(
                f"Cannot decrypt the value sealed for {purpose!r}: wrong key, wrong row, or "
                "altered ciphertext",
                hint=f"Was {_KEY_SETTING} or {KEY_FILE} changed? Affected users sign in again",
            ) from exc
        return plain.decode()


def required(sealer: Sealer | None, what: str) -> Sealer:
    """``sealer``, or the ``ConfigError`` of a store opened without a key that is asked to keep
    ``what`` (``OAuth tokens``, ``Linear tokens``)."""
    if sealer is None:
        raise ConfigError(
            f"This store was opened without an encryption key, so it cannot keep {what}",
            hint="Open the store with Store.open(url, sealer=Sealer.from_settings(...))",
        )
    return sealer
