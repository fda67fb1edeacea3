"""Slack message text as the agent gets it. Pure: no I/O.

Slack escapes ``&``, ``<`` and ``>`` in message text and writes mentions as ``<@U123>``; the
bot's own mention is what addressed it and is removed, other people's stay as ``<@U…>`` so
the agent can tell people apart without learning their names.
"""

from __future__ import annotations

import re

PROMPT_TEXT_MAX = 16_000
"""Characters of one Slack message kept as a prompt; Slack's own cap is 40,000."""
TITLE_MAX = 80
_SPACES = re.compile(r"\s+")


def clean_text(text: str, bot_user_id: str | None, *, max_chars: int = PROMPT_TEXT_MAX) -> str:
    """``text`` with the bot's mentions removed, Slack's escapes undone, cut to ``max_chars``."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", "", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()
    if len(text) > max_chars:
        text = text[:max_chars] + "\n[message cut: it was longer]"
    return text


def mentions(text: str, user_id: str | None) -> bool:
    """Whether ``text`` mentions ``user_id`` (``<@U…>`` or ``<@U…|name>``)."""
    return (
        bool(user_id) and re.search(rf"<@{re.escape(user_id or '')}(?:\|[^>]*)?>", text) is not None
    )


def title_of(text: str) -> str | None:
    """A session title from a request: its first line, spaces collapsed, cut short."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    first = _SPACES.sub(" ", first).strip()
    if not first:
        return None
    return first if len(first) <= TITLE_MAX else first[: TITLE_MAX - 1].rstrip() + "…"


def origin_ref(team_id: str, channel_id: str, thread_ts: str) -> str:
    return f"slack:{team_id}/{channel_id}/{thread_ts}"
