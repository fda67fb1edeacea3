"""Links to this server's web app that integrations put in what they post (a Slack message, a
GitHub comment, a Linear activity)."""

from __future__ import annotations

from openinspect.settings import Settings


def web_base(settings: Settings) -> str:
    """Where people reach the web app (``server.public_url``, else host:port)."""
    server = settings.server
    return (server.public_url or f"http://{server.host}:{server.port}").rstrip("/")


def session_url(settings: Settings, session_id: str) -> str:
    return f"{web_base(settings)}/sessions/{session_id}"
