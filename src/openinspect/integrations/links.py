"""Links to this server's web app that integrations put in what they post (a Slack message, a
GitHub comment, a Linear activity), and keys that fit a column."""

from __future__ import annotations

import hashlib

from openinspect.settings import Settings


def web_base(settings: Settings) -> str:
    """Where people reach the web app (``server.public_url``, else host:port)."""
    server = settings.server
    return (server.public_url or f"http://{server.host}:{server.port}").rstrip("/")


def session_url(settings: Settings, session_id: str) -> str:
    return f"{web_base(settings)}/sessions/{session_id}"


def bounded_key(key: str, limit: int) -> str:
    """``key`` as it is when it fits ``limit``, else a prefix and its sha256."""
    if len(key) <= limit:
        return key
    return key[:20] + ":sha256:" + hashlib.sha256(key.encode()).hexdigest()
