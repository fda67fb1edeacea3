"""What the agent posts to Linear, as outbox rows (``store.outbox``, source ``linear``).

Two kinds of row, both aimed at one agent session (the row's ``target``: ``{org_id,
agent_session_id}``, so an agent session's rows are posted in the order they were decided):

- an **activity** (``body.op == "activity"``): ``agentActivityCreate`` with ``content``
  (``thought``, ``action``, ``response``, ``error``, ``elicitation``), ``ephemeral``, ``signal``
  and ``signalMetadata``, and the id :func:`activity_id` derives from the row's key, so a retry
  finds the activity it made (``agentActivity(id)``) or is told it exists;
- the session's **links** (``body.op == "links"``): ``agentSessionUpdate`` with
  ``externalUrls`` (the web view, then the pull request), which replaces them: posting it twice
  changes nothing.

Keys (CONTRACT §2): ``thought:<agent session id>`` (the first), ``act:<agent session id>:<seq>``,
``final:<prompt id>``, ``elicit:<agent session id>:<n>``, ``urls:<agent session id>`` (and
``urls:<agent session id>:pr:<number>`` once a pull request is open).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from openinspect.integrations.links import bounded_key
from openinspect.store import Store
from openinspect.store.outbox import OUTBOX_KEY_MAX

SOURCE = "linear"
BODY_MAX_CHARS = 10_000
"""The longest activity text posted (Linear documents no limit; a long one is unreadable)."""
PARAMETER_MAX_CHARS = 200
ActivityType = Literal["thought", "action", "response", "error", "elicitation"]


def activity_id(key: str) -> str:
    """The activity id a row's key stands for: a UUID v4 in form (``AgentActivityCreateInput.id``
    takes v4 only), made of the key's SHA-256 so every retry names the same activity."""
    digest = hashlib.sha256(f"openinspect:{key}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def cut(text: str, limit: int = BODY_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _target(org_id: str, agent_session_id: str) -> dict[str, Any]:
    return {"org_id": org_id, "agent_session_id": agent_session_id}


async def post_activity(
    store: Store,
    conn: AsyncConnection,
    *,
    key: str,
    org_id: str,
    agent_session_id: str,
    content: dict[str, Any],
    ephemeral: bool = False,
    signal: str | None = None,
    signal_metadata: dict[str, Any] | None = None,
    session_id: str | None = None,
) -> bool:
    """Decide an activity, in the caller's transaction (once per ``key``)."""
    body: dict[str, Any] = {"op": "activity", "content": content, "ephemeral": ephemeral}
    if signal is not None:
        body["signal"] = signal
    if signal_metadata is not None:
        body["signalMetadata"] = signal_metadata
    return await store.outbox.enqueue(
        conn,
        source=SOURCE,
        key=bounded_key(key, OUTBOX_KEY_MAX),
        kind=str(content["type"]),
        target=_target(org_id, agent_session_id),
        body=body,
        session_id=session_id,
    )


def message(kind: ActivityType, body: str) -> dict[str, Any]:
    """The content of a ``thought``, ``response``, ``error`` or ``elicitation``."""
    return {"type": kind, "body": cut(body) or "…"}


def action(name: str, parameter: str) -> dict[str, Any]:
    return {
        "type": "action",
        "action": cut(name, PARAMETER_MAX_CHARS) or "step",
        "parameter": cut(parameter, PARAMETER_MAX_CHARS) or "…",
    }


async def set_links(
    store: Store,
    conn: AsyncConnection,
    *,
    key: str,
    org_id: str,
    agent_session_id: str,
    links: list[dict[str, str]],
    session_id: str | None = None,
) -> bool:
    """Decide the agent session's external links (all of them: they replace the ones before)."""
    return await store.outbox.enqueue(
        conn,
        source=SOURCE,
        key=bounded_key(key, OUTBOX_KEY_MAX),
        kind="links",
        target=_target(org_id, agent_session_id),
        body={"op": "links", "externalUrls": links},
        session_id=session_id,
    )


def request_for(key: str, agent_session_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """The ``AgentActivityCreateInput`` of an activity row."""
    activity: dict[str, Any] = {
        "id": activity_id(key),
        "agentSessionId": agent_session_id,
        "content": body["content"],
    }
    if body.get("ephemeral"):
        activity["ephemeral"] = True
    for name in ("signal", "signalMetadata"):
        if body.get(name) is not None:
            activity[name] = body[name]
    return activity
