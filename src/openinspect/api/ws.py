"""The client WebSocket, ``GET /api/sessions/{id}/ws`` (protocol in ``docs/sessions.md``).

The first message must be ``subscribe {token, since_seq?}`` within ``AUTH_TIMEOUT_S``. The
handler subscribes to the bus *before* it reads the log, then drops bus events it already sent,
so a joining or resuming client sees every durable event exactly once, in order.

Close codes: 4001 bad token, 4004 session not found, 4008 no subscribe in time,
4009 fell behind (reconnect with ``since_seq``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import secrets
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field, ValidationError

from openinspect.api.deps import AppState
from openinspect.bus import SubscriberOverflow
from openinspect.domain.events import dump_event
from openinspect.domain.models import User
from openinspect.errors import AuthError, InvalidInput, OpenInspectError, SessionNotFound
from openinspect.sessions.replay import join_replay, newest_window

log = logging.getLogger(__name__)
router = APIRouter()

AUTH_TIMEOUT_S = 10.0
MESSAGE_MAX_CHARS = 1_000_000
CLOSE_AUTH, CLOSE_NOT_FOUND, CLOSE_AUTH_TIMEOUT, CLOSE_RESYNC = 4001, 4004, 4008, 4009


class _Subscribe(BaseModel):
    token: str = Field(max_length=2048)
    since_seq: int | None = Field(None, ge=0)


class _Prompt(BaseModel):
    content: str
    model: str | None = None
    effort: str | None = None
    client_request_id: str | None = None


@functools.lru_cache(maxsize=4096)
def _outgoing(raw: str) -> tuple[int | None, str]:
    """A bus message as the text every subscribed client gets, and its durable seq (None for
    ephemeral messages). Cached: the same message fans out to every connection of the process,
    and is parsed and encoded once."""
    message = json.loads(raw)
    if message["kind"] == "presence":
        return None, json.dumps({"type": "presence", "participants": message["participants"]})
    event = message["event"]
    seq = None if event["type"] == "agent-text-delta" else int(event["seq"])
    return seq, json.dumps({"type": "event", "event": event})


class _Connection:
    def __init__(self, ws: WebSocket, state: AppState, session_id: str, user: User) -> None:
        self.ws = ws
        self.state = state
        self.session_id = session_id
        self.user = user
        self.client_id = secrets.token_hex(8)
        self.last_seq = 0
        self._send_lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.ws.send_text(json.dumps(message))

    async def error(self, exc: OpenInspectError, **extra: Any) -> None:
        await self.send(
            {"type": "error", "code": exc.code, "message": exc.message, "hint": exc.hint, **extra}
        )

    async def subscribed(self, since_seq: int | None) -> None:
        limits = self.state.manager.services.settings.sessions
        replay = await join_replay(
            self.state.store.events,
            self.session_id,
            since_seq,
            max_events=limits.replay_events,
            max_chars=limits.replay_max_bytes,
        )
        events, has_more, reset = replay.events, replay.has_more, replay.reset
        self.last_seq = events[-1].seq if events else (since_seq or 0)
        snapshot = await self.state.manager.snapshot(self.session_id)
        await self.send(
            {
                "type": "subscribed",
                **snapshot,
                "events": [dump_event(e) for e in events],
                "has_more": has_more,
                "reset": reset,
                "last_seq": self.last_seq,
            }
        )

    async def forward(self, raw: str) -> None:
        seq, text = _outgoing(raw)
        if seq is not None:
            if seq <= self.last_seq:
                return  # already sent in the snapshot
            self.last_seq = seq
        async with self._send_lock:
            await self.ws.send_text(text)

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "ping":
            await self.send({"type": "pong"})
            return
        actor = await self.state.manager.actor(self.session_id)
        if kind == "prompt":
            body = _Prompt.model_validate(message)
            try:
                prompt = await actor.submit(
                    self.user,
                    body.content,
                    model=body.model,
                    effort=body.effort,
                    client_request_id=body.client_request_id,
                )
            except OpenInspectError as exc:
                await self.error(exc, client_request_id=body.client_request_id)
                return
            await self.send(
                {
                    "type": "prompt-accepted",
                    "client_request_id": body.client_request_id,
                    "prompt": prompt.model_dump(mode="json"),
                }
            )
        elif kind == "cancel-prompt":
            await actor.cancel(str(message.get("prompt_id", "")))
        elif kind == "stop":
            await actor.stop()
        elif kind == "typing":
            actor.typing()
        elif kind == "presence":
            idle = message.get("status") == "idle"
            self.state.manager.presence.update(
                self.session_id, self.client_id, "idle" if idle else "active"
            )
            await self.publish_presence()
        elif kind == "history":
            await self.history(message)
        else:
            raise InvalidInput(
                f"Unknown message type {kind!r}",
                hint="Expected subscribe, prompt, cancel-prompt, stop, typing, "
                "presence, history or ping",
            )

    async def history(self, message: dict[str, Any]) -> None:
        page_max = self.state.manager.services.settings.sessions.history_page_max
        before = message.get("before_seq")
        limit = message.get("limit", 200)
        if not isinstance(before, int) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput("history needs an integer before_seq and a positive limit")
        events, has_more = await newest_window(
            self.state.store.events,
            self.session_id,
            before_seq=before,
            max_events=min(limit, page_max),
            max_chars=self.state.manager.services.settings.sessions.replay_max_bytes,
        )
        await self.send(
            {
                "type": "history-page",
                "events": [dump_event(e) for e in events],
                "has_more": has_more,
            }
        )

    async def publish_presence(self) -> None:
        manager = self.state.manager
        await manager.services.events.publish_presence(
            self.session_id, manager.presence.snapshot(self.session_id)
        )


async def _authenticate(ws: WebSocket, state: AppState, session_id: str) -> tuple[User, _Subscribe]:
    while True:
        async with asyncio.timeout(AUTH_TIMEOUT_S):
            raw = await ws.receive_text()
        message = json.loads(raw)
        if message.get("type") == "ping":
            await ws.send_text(json.dumps({"type": "pong"}))
            continue
        if message.get("type") != "subscribe":
            raise InvalidInput("The first message must be subscribe")
        sub = _Subscribe.model_validate(message)
        user = await state.store.users.get(state.ws_tokens.verify(sub.token, session_id))
        if user is None:
            raise AuthError("The user of this token no longer exists")
        return user, sub


@router.websocket("/api/sessions/{session_id}/ws")
async def session_socket(ws: WebSocket, session_id: str) -> None:
    state: AppState = ws.app.state.openinspect
    await ws.accept()
    try:
        user, sub = await _authenticate(ws, state, session_id)
        await state.manager.get(session_id)
    except TimeoutError:
        await ws.close(CLOSE_AUTH_TIMEOUT, "No subscribe message in time")
        return
    except SessionNotFound as exc:
        await ws.close(CLOSE_NOT_FOUND, exc.message[:120])
        return
    except (OpenInspectError, ValidationError, ValueError) as exc:
        await ws.close(CLOSE_AUTH, str(exc)[:120])
        return
    except WebSocketDisconnect:
        return
    conn = _Connection(ws, state, session_id, user)
    presence = state.manager.presence
    async with state.manager.services.events.subscribe(session_id) as messages:
        await conn.subscribed(sub.since_seq)
        presence.join(session_id, conn.client_id, user.id, user.name)
        await conn.publish_presence()
        pump = asyncio.create_task(_pump(conn, messages))
        try:
            await _read(conn)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            presence.leave(session_id, conn.client_id)
            await conn.publish_presence()


async def _pump(conn: _Connection, messages: Any) -> None:
    try:
        async for raw in messages:
            await conn.forward(raw)
    except SubscriberOverflow:
        await conn.ws.close(CLOSE_RESYNC, "Fell behind; reconnect with since_seq")


async def _read(conn: _Connection) -> None:
    while True:
        try:
            raw = await conn.ws.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            return
        try:
            if len(raw) > MESSAGE_MAX_CHARS:
                raise InvalidInput(
                    f"Message of {len(raw)} characters; the limit is {MESSAGE_MAX_CHARS}"
                )
            message = json.loads(raw)
            if not isinstance(message, dict):
                raise InvalidInput("Messages are JSON objects with a 'type'")
            await conn.handle(message)
        except OpenInspectError as exc:
            await conn.error(exc)
        except (ValidationError, ValueError) as exc:
            await conn.error(InvalidInput(f"Invalid message: {exc}"))
