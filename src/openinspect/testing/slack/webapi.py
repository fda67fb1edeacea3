"""The Web API methods: ``POST/GET /api/<method>`` answering ``{ok:true,…}`` or
``{ok:false,error}`` with HTTP 200, as Slack does.

Arguments come from the query string, a form body or a JSON body (slack_sdk sends each kind,
depending on the method), merged; structured arguments (``blocks``, ``metadata``, ``view``) may
be JSON strings, as form bodies carry them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openinspect.testing.slack import shapes
from openinspect.testing.slack.records import Ephemeral, Message, TokenKind, View
from openinspect.testing.slack.state import SlackState

MAX_TEXT_CHARS = 40_000
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


class ApiError(Exception):
    """An ``{ok:false,error}`` answer."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass
class Ctx:
    state: SlackState
    token_kind: TokenKind
    socket_url: Callable[[], str]
    """Issues a single-use Socket Mode URL (``apps.connections.open``)."""


class Args:
    """The merged arguments of one call, with typed getters that raise Slack's errors."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def opt(self, name: str, *, required: bool = False) -> str | None:
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise ApiError("invalid_arguments")
            return None
        if isinstance(value, bool | dict | list):
            raise ApiError("invalid_arguments")
        return str(value)

    def req(self, name: str) -> str:
        value = self.opt(name, required=True)
        assert value is not None
        return value

    def flag(self, name: str) -> bool:
        value = self.raw.get(name)
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true") if value is not None else False

    def number(self, name: str, default: int) -> int:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ApiError("invalid_arguments") from None

    def parsed(self, name: str, error: str = "invalid_arguments") -> Any:
        value = self.raw.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(error) from None
        return value

    def has(self, name: str) -> bool:
        return name in self.raw


Handler = Callable[[Ctx, Args], dict[str, Any]]
METHODS: dict[str, Handler] = {}
APP_TOKEN_METHODS = {"apps.connections.open"}


def method(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        METHODS[name] = fn
        return fn

    return register


def call(ctx: Ctx, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run one method; the answer's ``ok`` says whether it worked."""
    handler = METHODS.get(name)
    try:
        if handler is None:
            raise ApiError("unknown_method")
        kind = ctx.token_kind
        if kind == "missing":
            raise ApiError("not_authed")
        if kind == "invalid":
            raise ApiError("invalid_auth")
        app_only = name in APP_TOKEN_METHODS
        if (kind == "app") != app_only:
            # An app token only opens sockets; a bot token cannot open one.
            raise ApiError("invalid_auth" if app_only else "not_allowed_token_type")
        with ctx.state.lock:
            result = handler(ctx, Args(args))
    except ApiError as exc:
        return {"ok": False, "error": exc.error}
    return {"ok": True, **result}


# ---------------------------------------------------------------------- helpers


def _channel(ctx: Ctx, args: Args, name: str = "channel") -> Any:
    ref = args.opt(name)
    if ref is None:
        raise ApiError("channel_not_found")
    channel = ctx.state.resolve_channel(ref)
    if channel is None:
        raise ApiError("channel_not_found")
    return channel


def _blocks(args: Args, limit: int = MAX_MESSAGE_BLOCKS) -> list[dict[str, Any]] | None:
    if not args.has("blocks"):
        return None
    blocks = args.parsed("blocks", "invalid_blocks")
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > limit:
        raise ApiError("invalid_blocks")
    if not all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks):
        raise ApiError("invalid_blocks")
    return blocks


def _text(args: Args) -> str | None:
    text = args.opt("text")
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise ApiError("msg_too_long")
    return text


def _metadata(args: Args) -> dict[str, Any] | None:
    if not args.has("metadata"):
        return None
    meta = args.parsed("metadata", "invalid_metadata_format")
    if meta is None:
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("event_type"), str):
        raise ApiError("invalid_metadata_format")
    payload = meta.get("event_payload", {})
    if not isinstance(payload, dict):
        raise ApiError("invalid_metadata_format")
    return {"event_type": meta["event_type"], "event_payload": payload}


def _cursor_offset(args: Args) -> int:
    cursor = args.opt("cursor")
    if cursor is None:
        return 0
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode()).decode()
        kind, _, offset = decoded.partition(":")
        if kind != "next" or not offset.isdigit():
            raise ValueError(cursor)
        return int(offset)
    except ValueError:
        raise ApiError("invalid_cursor") from None


def _page(args: Args, items: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    limit = max(1, min(args.number("limit", DEFAULT_LIMIT), MAX_LIMIT))
    start = _cursor_offset(args)
    page = items[start : start + limit]
    more = start + limit < len(items)
    cursor = base64.urlsafe_b64encode(f"next:{start + limit}".encode()).decode() if more else ""
    return page, {"has_more": more, "response_metadata": {"next_cursor": cursor}}


def _bot_message(ctx: Ctx, msg: Message) -> None:
    if msg.bot_id != ctx.state.identity.bot_id:
        raise ApiError("cant_update_message")


# ---------------------------------------------------------------------- methods


@method("auth.test")
def auth_test(ctx: Ctx, args: Args) -> dict[str, Any]:
    ident = ctx.state.identity
    return {
        "url": f"https://{ident.team_domain}.slack.com/",
        "team": ident.team_name,
        "user": ident.bot_name,
        "team_id": ident.team_id,
        "user_id": ident.bot_user_id,
        "bot_id": ident.bot_id,
        "is_enterprise_install": False,
    }


@method("chat.postMessage")
def chat_post_message(ctx: Ctx, args: Args) -> dict[str, Any]:
    state = ctx.state
    channel = _channel(ctx, args)
    text = _text(args)
    blocks = _blocks(args)
    metadata = _metadata(args)
    if not text and not blocks and not args.has("attachments"):
        raise ApiError("no_text")
    thread_ts = args.opt("thread_ts")
    if thread_ts is not None:
        parent = state.find(channel.id, thread_ts)
        if parent is None:
            raise ApiError("thread_not_found")
        thread_ts = parent.thread_ts or parent.ts
    msg = Message(
        channel=channel.id,
        ts=state.next_ts(),
        text=text or "",
        user=state.identity.bot_user_id,
        bot_id=state.identity.bot_id,
        blocks=blocks,
        thread_ts=thread_ts,
        reply_broadcast=args.flag("reply_broadcast") and thread_ts is not None,
        metadata=metadata,
    )
    state.add_message(msg)
    return {"channel": channel.id, "ts": msg.ts, "message": shapes.message_wire(state, msg)}


@method("chat.update")
def chat_update(ctx: Ctx, args: Args) -> dict[str, Any]:
    state = ctx.state
    channel = _channel(ctx, args)
    msg = state.find(channel.id, args.req("ts"))
    if msg is None:
        raise ApiError("message_not_found")
    _bot_message(ctx, msg)
    text = _text(args)
    blocks = _blocks(args)
    metadata = _metadata(args)
    if text is not None:
        msg.text = text
    if args.has("blocks"):
        # Omitting blocks keeps them; an empty list clears them.
        msg.blocks = blocks or None
    if metadata is not None:
        msg.metadata = metadata
    msg.edits += 1
    state.changed.notify_all()
    return {
        "channel": channel.id,
        "ts": msg.ts,
        "text": msg.text,
        "message": shapes.message_wire(state, msg),
    }


@method("chat.delete")
def chat_delete(ctx: Ctx, args: Args) -> dict[str, Any]:
    channel = _channel(ctx, args)
    msg = ctx.state.find(channel.id, args.req("ts"))
    if msg is None:
        raise ApiError("message_not_found")
    if msg.bot_id != ctx.state.identity.bot_id:
        raise ApiError("cant_delete_message")
    msg.deleted = True
    ctx.state.changed.notify_all()
    return {"channel": channel.id, "ts": msg.ts}


@method("chat.postEphemeral")
def chat_post_ephemeral(ctx: Ctx, args: Args) -> dict[str, Any]:
    state = ctx.state
    channel = _channel(ctx, args)
    user = args.req("user")
    if user not in state.users:
        raise ApiError("user_not_found")
    text = _text(args)
    blocks = _blocks(args)
    if not text and not blocks and not args.has("attachments"):
        raise ApiError("no_text")
    eph = Ephemeral(
        channel=channel.id,
        user=user,
        message_ts=state.next_ts(),
        text=text or "",
        blocks=blocks,
        thread_ts=args.opt("thread_ts"),
    )
    state.ephemerals.append(eph)
    state.changed.notify_all()
    return {"message_ts": eph.message_ts}


@method("chat.getPermalink")
def chat_get_permalink(ctx: Ctx, args: Args) -> dict[str, Any]:
    channel = _channel(ctx, args)
    msg = ctx.state.find(channel.id, args.req("message_ts"))
    if msg is None:
        raise ApiError("message_not_found")
    link = f"{shapes.PERMALINK_BASE}{channel.id}/p{msg.ts.replace('.', '')}"
    if msg.is_reply:
        link += f"?thread_ts={msg.thread_ts}&cid={channel.id}"
    return {"channel": channel.id, "permalink": link}


def _reaction_target(ctx: Ctx, args: Args) -> tuple[Message, str]:
    channel = _channel(ctx, args)
    msg = ctx.state.find(channel.id, args.req("timestamp"))
    if msg is None:
        raise ApiError("message_not_found")
    name = args.req("name")
    if ":" in name or " " in name or len(name) > 100:
        raise ApiError("invalid_name")
    return msg, name


@method("reactions.add")
def reactions_add(ctx: Ctx, args: Args) -> dict[str, Any]:
    msg, name = _reaction_target(ctx, args)
    users = msg.reactions.setdefault(name, [])
    bot = ctx.state.identity.bot_user_id
    if bot in users:
        raise ApiError("already_reacted")
    users.append(bot)
    ctx.state.changed.notify_all()
    return {}


@method("reactions.remove")
def reactions_remove(ctx: Ctx, args: Args) -> dict[str, Any]:
    msg, name = _reaction_target(ctx, args)
    users = msg.reactions.get(name, [])
    bot = ctx.state.identity.bot_user_id
    if bot not in users:
        raise ApiError("no_reaction")
    users.remove(bot)
    if not users:
        del msg.reactions[name]
    ctx.state.changed.notify_all()
    return {}


@method("conversations.replies")
def conversations_replies(ctx: Ctx, args: Args) -> dict[str, Any]:
    state = ctx.state
    channel = _channel(ctx, args)
    ts = args.req("ts")
    parent = state.find(channel.id, ts)
    if parent is None:
        raise ApiError("thread_not_found")
    thread = state.replies(channel.id, parent.thread_ts or parent.ts)
    meta = args.flag("include_all_metadata")
    page, more = _page(args, thread)
    return {"messages": [shapes.message_wire(state, m, with_metadata=meta) for m in page], **more}


@method("conversations.history")
def conversations_history(ctx: Ctx, args: Args) -> dict[str, Any]:
    state = ctx.state
    channel = _channel(ctx, args)
    oldest, latest = args.opt("oldest"), args.opt("latest")
    inclusive = args.flag("inclusive")

    def within(m: Message) -> bool:
        ts = float(m.ts)
        if oldest is not None and (ts < float(oldest) or (ts == float(oldest) and not inclusive)):
            return False
        return latest is None or ts < float(latest) or (ts == float(latest) and inclusive)

    try:
        top = [
            m
            for m in reversed(state.messages.get(channel.id, []))
            if not m.deleted and (not m.is_reply or m.reply_broadcast) and within(m)
        ]
    except ValueError:
        raise ApiError("invalid_arguments") from None
    meta = args.flag("include_all_metadata")
    page, more = _page(args, top)
    return {"messages": [shapes.message_wire(state, m, with_metadata=meta) for m in page], **more}


@method("conversations.info")
def conversations_info(ctx: Ctx, args: Args) -> dict[str, Any]:
    return {"channel": shapes.channel_wire(_channel(ctx, args))}


@method("conversations.open")
def conversations_open(ctx: Ctx, args: Args) -> dict[str, Any]:
    state = ctx.state
    if args.has("channel"):
        return {"channel": {"id": _channel(ctx, args).id}}
    users = [u for u in (args.opt("users") or "").split(",") if u]
    if not users:
        raise ApiError("users_list_not_supplied")
    if len(users) > 1:
        raise ApiError("not_supported")
    if users[0] not in state.users:
        raise ApiError("user_not_found")
    dm = state.dm_with(users[0])
    return {"channel": {"id": dm.id} if not args.flag("return_im") else shapes.channel_wire(dm)}


@method("users.info")
def users_info(ctx: Ctx, args: Args) -> dict[str, Any]:
    user = ctx.state.users.get(args.req("user"))
    if user is None:
        raise ApiError("user_not_found")
    return {"user": shapes.user_wire(ctx.state, user)}


@method("users.lookupByEmail")
def users_lookup_by_email(ctx: Ctx, args: Args) -> dict[str, Any]:
    email = args.req("email").lower()
    for user in ctx.state.users.values():
        if user.email is not None and user.email.lower() == email:
            return {"user": shapes.user_wire(ctx.state, user)}
    raise ApiError("users_not_found")


def _view(args: Args, kind: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    view = args.parsed("view")
    if not isinstance(view, dict) or view.get("type") != kind:
        raise ApiError("invalid_arguments")
    blocks = view.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > MAX_VIEW_BLOCKS:
        raise ApiError("invalid_arguments")
    if not all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks):
        raise ApiError("invalid_arguments")
    return view, blocks


def _view_hash(view: dict[str, Any], ts: str) -> str:
    digest = hashlib.sha256((json.dumps(view, sort_keys=True) + ts).encode()).hexdigest()
    return f"{ts}.{digest[:8]}"


@method("views.publish")
def views_publish(ctx: Ctx, args: Args) -> dict[str, Any]:
    state = ctx.state
    user = args.req("user_id")
    if user not in state.users:
        raise ApiError("user_not_found")
    view, blocks = _view(args, "home")
    current = state.home.get(user)
    given_hash = args.opt("hash")
    if given_hash is not None and (current is None or current.hash != given_hash):
        raise ApiError("hash_conflict")
    view_id = current.id if current is not None else state.new_id("V")
    published = View(
        id=view_id, type="home", user=user, hash=_view_hash(view, state.next_ts()),
        blocks=blocks, raw=view,
    )  # fmt: skip
    state.home[user] = published
    state.changed.notify_all()
    return {"view": shapes.view_wire(state, published)}


@method("views.open")
def views_open(ctx: Ctx, args: Args) -> dict[str, Any]:
    state = ctx.state
    trigger_id = args.req("trigger_id")
    user = state.triggers.pop(trigger_id, None)
    if user is None:
        raise ApiError("invalid_trigger_id")
    view, blocks = _view(args, "modal")
    opened = View(
        id=state.new_id("V"), type="modal", user=user, hash=_view_hash(view, state.next_ts()),
        blocks=blocks, raw=view, trigger_id=trigger_id,
    )  # fmt: skip
    state.modals.append(opened)
    state.changed.notify_all()
    return {"view": shapes.view_wire(state, opened)}


@method("apps.connections.open")
def apps_connections_open(ctx: Ctx, args: Args) -> dict[str, Any]:
    return {"url": ctx.socket_url()}
