"""Block Kit for the messages the app posts: a thread's status message, a prompt's final message,
and the agent's notifications. Pure functions of their inputs; every message has a plain
``text`` fallback (notifications, screen readers).

Everything that came from the agent, its tools or the repo (its text, a command, a path, a
branch name) is **escaped** for Slack (``&``, ``<``, ``>``): Slack reads ``<!channel>``,
``<@U…>`` and ``<url|label>`` only from those brackets, so escaped text can neither ping a
channel or a person nor show a link under a forged label. Limits kept: ≤50 blocks, ≤3,000
characters per section text, ≤2,000 per field, ≤75 per button label.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from openinspect.integrations.links import session_url
from openinspect.integrations.slack.state import ThreadState
from openinspect.settings import Settings

SECTION_MAX_CHARS = 3_000
FIELD_MAX_CHARS = 2_000
FINAL_TEXT_MAX_CHARS = 2_800
FALLBACK_MAX_CHARS = 300
URL_MAX_CHARS = 3_000
STOP_ACTION = "openinspect_stop"
OPEN_ACTION = "openinspect_open"
CREATE_PR_ACTION = "openinspect_create_pr"
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ICONS = {
    "waiting": "⏳",
    "queued": "⏳",
    "running": "⚙️",
    "finished": "✅",
    "failed": "❌",
    "stopped": "⏹️",
}

Message = dict[str, Any]
"""``{"text": …, "blocks": [...]}``: what ``chat.postMessage`` / ``chat.update`` take."""


def escape(text: str) -> str:
    """``text`` safe inside Slack mrkdwn: no mention, channel ping or link can come out of it."""
    return "".join(_ESCAPES.get(c, c) for c in text)


def escape_cut(text: str, limit: int) -> str:
    """``escape(text)`` in at most ``limit`` characters (an ellipsis when cut, never half an
    entity)."""
    out: list[str] = []
    size = 0
    for c in text:
        piece = _ESCAPES.get(c, c)
        if size + len(piece) > limit - 1:
            out.append("…")
            return "".join(out)
        out.append(piece)
        size += len(piece)
    return "".join(out)


def _code(text: str) -> str:
    """Inline code of untrusted text: escaped, and no backtick can close it early."""
    return escape(text.replace("`", "'"))


def _url(url: str) -> str | None:
    """A URL fit for a link or a url button: http(s), one line, no Slack brackets."""
    if not re.fullmatch(r"https?://[^\s<>|]+", url) or len(url) > URL_MAX_CHARS:
        return None
    return url


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m"


def cost(usd: float) -> str:
    return f"${usd:.2f}"


def _elapsed(state: ThreadState, now: datetime) -> str | None:
    if state.started_at is None:
        return None
    return duration(((state.finished_at or now) - state.started_at).total_seconds())


def _step_line(state: ThreadState) -> str:
    """The step in bold: our words (with `tool` names in code), its detail in code."""
    line = escape(state.step or "Waiting for the request")
    if state.detail:
        line += f": `{_code(state.detail)}`"
    if state.status == "failed" and state.error:
        line += f": {escape(state.error)}"
    return f"{_ICONS.get(state.status, '')} *{line}*"[:SECTION_MAX_CHARS]


def _where(state: ThreadState) -> str:
    parts = []
    if state.repo:
        parts.append(f"*{escape(state.repo)}*")
    if state.branch:
        parts.append(f"branch `{_code(state.branch)}`")
    return " · ".join(parts)


def _button(text: str, action_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text[:75], "emoji": True},
        "action_id": action_id,
        **extra,
    }


def status_message(
    state: ThreadState, *, settings: Settings, session_id: str, now: datetime
) -> Message:
    """The thread's live status: the step, where, how long and how much, Stop and Open."""
    step = _step_line(state)
    context = [x for x in (_where(state),) if x]
    clock = _elapsed(state, now)
    meter = " · ".join(
        x for x in (f"⏱ {clock}" if clock else None, cost(state.prompt_cost_usd)) if x
    )
    context.append(meter)
    buttons = []
    if state.running:
        buttons.append(_button("Stop", STOP_ACTION, value=session_id, style="danger"))
    buttons.append(_button("Open", OPEN_ACTION, url=session_url(settings, session_id)))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": step}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": c} for c in context]},
        {"type": "actions", "elements": buttons},
    ]
    plain = f"{state.step}: {state.detail}" if state.detail else (state.step or "Waiting")
    return {"text": escape_cut(f"{plain} ({meter})", FALLBACK_MAX_CHARS), "blocks": blocks}


def final_message(state: ThreadState, *, settings: Settings, session_id: str) -> Message:
    """A prompt's result: what was done, the branch, the pull request, the cost, and buttons."""
    if state.last_text.strip():
        summary = escape_cut(state.last_text.strip(), FINAL_TEXT_MAX_CHARS)
    else:
        summary = "_The agent finished without a summary._"
    if state.status != "finished":
        summary = f"{_step_line(state)}\n{summary}"[:SECTION_MAX_CHARS]
    fields = []
    if state.pushed and state.branch:
        fields.append(f"*Branch*\n`{_code(state.branch)}`"[:FIELD_MAX_CHARS])
    pr_url = _url(state.pr_url or "")
    if pr_url and state.pr_number is not None:
        fields.append(f"*Pull request*\n<{pr_url}|#{state.pr_number}>")
    fields.append(f"*Cost*\n{cost(state.prompt_cost_usd)}")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    buttons = [_button("Open in web", OPEN_ACTION, url=session_url(settings, session_id))]
    if state.pushed and state.pr_number is None:
        buttons.append(_button("Create PR", CREATE_PR_ACTION, value=session_id, style="primary"))
    blocks.append({"type": "actions", "elements": buttons})
    plain = state.last_text.strip() or state.step or "Done"
    return {"text": escape_cut(plain, FALLBACK_MAX_CHARS), "blocks": blocks}


SUPERSEDED_TEXT = "That request ended; your newer message is being worked on now."


def superseded_message() -> Message:
    """The one line posted instead of the result of a prompt a newer one superseded."""
    return {
        "text": SUPERSEDED_TEXT,
        "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": SUPERSEDED_TEXT}]}],
    }


def notify_message(text: str, *, settings: Settings, session_id: str, title: str) -> Message:
    """The agent's ``notify``: its text (escaped, so no mention or link gets through) and where
    it came from."""
    body = escape_cut(text, SECTION_MAX_CHARS)
    origin = (
        f"🔔 from <{session_url(settings, session_id)}|{escape_cut(title, 150) or 'a session'}>"
    )
    return {
        "text": escape_cut(text, FALLBACK_MAX_CHARS),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": origin}]},
        ],
    }
