"""Slack's wire shapes built from the fake's records: messages as the Web API returns them,
users, channels, views, event callbacks and ``block_actions`` payloads."""

from __future__ import annotations

import time
import uuid
from typing import Any

from openinspect.testing.slack.records import Channel, Message, User, View
from openinspect.testing.slack.state import SlackState

PERMALINK_BASE = "https://fake.slack.com/archives/"


def message_wire(state: SlackState, msg: Message, *, with_metadata: bool = True) -> dict[str, Any]:
    """A message as ``conversations.history``/``replies`` and ``chat.postMessage`` return it."""
    out: dict[str, Any] = {"type": "message", "ts": msg.ts, "text": msg.text}
    if msg.user is not None:
        out["user"] = msg.user
    if msg.bot_id is not None:
        out["bot_id"] = msg.bot_id
        if msg.bot_id == state.identity.bot_id:
            out["app_id"] = state.identity.app_id
    if msg.subtype is not None:
        out["subtype"] = msg.subtype
    out["team"] = state.identity.team_id
    if msg.blocks is not None:
        out["blocks"] = msg.blocks
    if msg.thread_ts is not None:
        out["thread_ts"] = msg.thread_ts
        if msg.is_reply:
            parent = state.find(msg.channel, msg.thread_ts)
            if parent is not None and parent.user is not None:
                out["parent_user_id"] = parent.user
        else:
            replies = state.replies(msg.channel, msg.ts)[1:]
            out["reply_count"] = len(replies)
            out["reply_users"] = sorted({r.user or r.bot_id or "" for r in replies} - {""})
            if replies:
                out["latest_reply"] = replies[-1].ts
    if msg.edits:
        out["edited"] = {"user": msg.user or state.identity.bot_user_id, "ts": msg.ts}
    if msg.reactions:
        out["reactions"] = [
            {"name": name, "users": list(users), "count": len(users)}
            for name, users in msg.reactions.items()
        ]
    if msg.metadata is not None and with_metadata:
        out["metadata"] = msg.metadata
    if msg.client_msg_id is not None:
        out["client_msg_id"] = msg.client_msg_id
    return out


def user_wire(state: SlackState, user: User) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "real_name": user.real_name or user.name,
        "display_name": user.display_name or user.name,
        "real_name_normalized": user.real_name or user.name,
        "display_name_normalized": user.display_name or user.name,
        "team": state.identity.team_id,
    }
    if user.email is not None:
        profile["email"] = user.email
    if user.bot_id is not None:
        profile["bot_id"] = user.bot_id
    return {
        "id": user.id,
        "team_id": state.identity.team_id,
        "name": user.name,
        "real_name": user.real_name or user.name,
        "deleted": False,
        "is_bot": user.is_bot,
        "is_app_user": False,
        "tz": "UTC",
        "profile": profile,
    }


def channel_wire(channel: Channel) -> dict[str, Any]:
    kind = channel.channel_type
    out: dict[str, Any] = {
        "id": channel.id,
        "created": 1700000000,
        "is_channel": kind == "channel",
        "is_group": kind == "group",
        "is_im": kind == "im",
        "is_mpim": kind == "mpim",
        "is_private": kind in ("group", "im", "mpim"),
        "is_archived": False,
        "is_member": channel.is_member,
    }
    if kind == "im":
        out["user"] = channel.user
    else:
        out["name"] = channel.name
        out["name_normalized"] = channel.name
    return out


def view_wire(state: SlackState, view: View) -> dict[str, Any]:
    out = dict(view.raw)
    out.update(
        id=view.id,
        team_id=state.identity.team_id,
        type=view.type,
        blocks=view.blocks,
        hash=view.hash,
        app_id=state.identity.app_id,
        bot_id=state.identity.bot_id,
    )
    out.setdefault("private_metadata", "")
    out.setdefault("callback_id", "")
    out.setdefault("state", {"values": {}})
    return out


def event_callback(state: SlackState, event: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The Events API envelope around ``event``."""
    ident = state.identity
    return {
        "token": ident.verification_token,
        "team_id": ident.team_id,
        "context_team_id": ident.team_id,
        "api_app_id": ident.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ident.team_id,
                "user_id": ident.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


def message_event(
    state: SlackState, msg: Message, channel: Channel, *, event_type: str
) -> dict[str, Any]:
    """The inner ``message`` / ``app_mention`` event for a message just posted."""
    event: dict[str, Any] = {"type": event_type}
    if msg.user is not None:
        event["user"] = msg.user
    if msg.bot_id is not None:
        event["bot_id"] = msg.bot_id
    if msg.subtype is not None:
        event["subtype"] = msg.subtype
    event.update(text=msg.text, ts=msg.ts, channel=channel.id, event_ts=msg.ts)
    event["team"] = state.identity.team_id
    if msg.thread_ts is not None and msg.is_reply:
        event["thread_ts"] = msg.thread_ts
        parent = state.find(msg.channel, msg.thread_ts)
        if parent is not None and parent.user is not None:
            event["parent_user_id"] = parent.user
    if event_type == "message":
        event["channel_type"] = channel.channel_type
    if msg.client_msg_id is not None:
        event["client_msg_id"] = msg.client_msg_id
    if msg.blocks is not None:
        event["blocks"] = msg.blocks
    return event


def rich_text_blocks(text: str) -> list[dict[str, Any]]:
    """The ``rich_text`` block Slack's clients attach to a typed message."""
    return [
        {
            "type": "rich_text",
            "block_id": uuid.uuid4().hex[:5],
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
            ],
        }
    ]


def find_element(blocks: list[dict[str, Any]], action_id: str) -> tuple[str, dict[str, Any]] | None:
    """``(block_id, element)`` of the interactive element with ``action_id``, if any: in an
    ``actions`` block's elements, a ``section`` accessory or an ``input`` block's element."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        candidates: list[Any] = []
        if isinstance(block.get("elements"), list):
            candidates.extend(block["elements"])
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                candidates.append(block[key])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id") or ""), element
    return None


def options_of(element: dict[str, Any]) -> list[dict[str, Any]]:
    opts = [o for o in element.get("options") or [] if isinstance(o, dict)]
    for group in element.get("option_groups") or []:
        if isinstance(group, dict):
            opts.extend(o for o in group.get("options") or [] if isinstance(o, dict))
    return opts
