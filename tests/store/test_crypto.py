"""AES-256-GCM sealing of credentials at rest, and where its key comes from."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from openinspect.errors import ConfigError
from openinspect.store.crypto import KEY_FILE, NONCE_BYTES, Sealer, load_or_create_key

SECRET = "gho_the-users-token-0123456789"


def test_seal_and_open_round_trip_with_random_nonces() -> None:
    sealer = Sealer(os.urandom(32))
    one, two = sealer.seal(SECRET, "identity:usr_a"), sealer.seal(SECRET, "identity:usr_a")
    assert one != two  # a fresh nonce each time
    assert SECRET not in one
    assert len(base64.b64decode(one)) == NONCE_BYTES + len(SECRET) + 16
    assert sealer.open(one, "identity:usr_a") == SECRET
    assert sealer.open(two, "identity:usr_a") == SECRET


def test_wrong_purpose_wrong_key_and_tampering_fail() -> None:
    sealer = Sealer(os.urandom(32))
    sealed = sealer.seal(SECRET, "identity:usr_a")
    with pytest.raises(ConfigError, match="wrong key, wrong row"):
        sealer.open(sealed, "identity:usr_b")  # copied to another user's row
    with pytest.raises(ConfigError):
        Sealer(os.urandom(32)).open(sealed, "identity:usr_a")
    raw = bytearray(base64.b64decode(sealed))
    raw[-1] ^= 1
    with pytest.raises(ConfigError):
        sealer.open(base64.b64encode(bytes(raw)).decode(), "identity:usr_a")
    with pytest.raises(ConfigError, match="not base64"):
        sealer.open("%%%", "identity:usr_a")
    with pytest.raises(ConfigError, match="too short"):
        sealer.open(base64.b64encode(b"short").decode(), "identity:usr_a")


def test_key_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    key = load_or_create_key(None, tmp_path)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 32
    assert load_or_create_key(None, tmp_path) == key


def test_configured_key_wins_and_is_validated(tmp_path: Path) -> None:
    raw = os.urandom(32)
    key = load_or_create_key(SecretStr(base64.b64encode(raw).decode()), tmp_path)
    assert key == raw
    assert not (tmp_path / KEY_FILE).exists()
    with pytest.raises(ConfigError, match="OPENINSPECT_AUTH__ENCRYPTION_KEY is 16 bytes"):
        load_or_create_key(SecretStr(base64.b64encode(os.urandom(16)).decode()), tmp_path)
    with pytest.raises(ConfigError, match="not valid base64"):
        load_or_create_key(SecretStr("not base64!"), tmp_path)


def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("c2hvcnQ=\n")
    with pytest.raises(ConfigError, match=KEY_FILE):
        load_or_create_key(None, tmp_path)
