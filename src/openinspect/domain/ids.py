"""Identifiers. Prefixed random hex, so a log line says what kind of thing an id names."""

from __future__ import annotations

import secrets

_ID_HEX_BYTES = 8
SHORT_ID_CHARS = 8
BRANCH_PREFIX = "openinspect/"


def new_id(prefix: str) -> str:
    """A fresh id such as ``ses_3f9a1c2b7d4e5f60``."""
    return f"{prefix}_{secrets.token_hex(_ID_HEX_BYTES)}"


def short_id(any_id: str) -> str:
    """The first hex characters of an id, used in branch names."""
    return any_id.split("_", 1)[-1][:SHORT_ID_CHARS]


def session_branch(session_id: str) -> str:
    """The working branch of a session: ``openinspect/<short-session-id>``."""
    return f"{BRANCH_PREFIX}{short_id(session_id)}"
