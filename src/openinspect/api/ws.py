"""The client WebSocket, ``GET /api/sessions/{id}/ws`` (protocol in ``docs/sessions.md``).

The first message must be ``subscribe {token, since_seq?}`` within ``AUTH_TIMEOUT_S``. The
handler joins the session's fan-out (``ws_fanout``: one bus subscription per session here, a
bounded queue per socket) *before* it reads the log, then drops queued events it already sent,
so a joining or resuming client sees every durable event exactly once, in order.

A signed token is not enough. On subscribe, on every command and every
``sessions.ws_auth_recheck_s`` the socket reads from the database that the API token the
WebSocket token was minted from is still live and that its user may see the session (admins all,
members their own — ``people.roles``), so a revocation, a deleted user or a lost role closes the
socket on whichever replica holds it.

Close codes: 4001 bad, expired or revoked token (or its user is gone), 4004 no such session or
one you may not see (the same answer), 4008 no subscribe in time, 4009 fell behind or stopped
reading (reconnect with ``since_seq``), 4029 the session or the user already has as many sockets
open as ``sessions.max_watchers_per_*`` allow, 1011 the server failed (the database unreachable,
say: reconnect later), 1009 a frame over the server's frame limit. Every other malformed frame
gets an ``error`` message and the socket stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any, Literal, NoReturn, TypeVar

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from openinspect.api.auth import WS_TOKEN_MAX_CHARS
from openinspect.api.schemas import event_shown_to, origin_shown_to
from openinspect.api.ws_fanout import ClientFellBehind, ClientQueue, Fanout
from openinspect.api.ws_frames import MAX_SEQ, encode, parse_incoming
from openinspect.controlplane import ControlPlane
from openinspect.domain.commands import CancelPrompt, SetPresence, Stop, SubmitPrompt, Typing
from openinspect.domain.events import dump_event, utcnow
from openinspect.domain.models import SessionOrigin, User
from openinspect.errors import (
    AuthError,
    InvalidInput,
    OpenInspectError,
    SessionNotFound,
    StoreError,
    WatcherLimitReached,
)
from openinspect.people.roles import ensure_can_see
from openinspect.services.tidy import WATCH_TOUCH_S
from openinspect.sessions.replay import join_replay, newest_window

log = logging.getLogger(__name__)
router = APIRouter()


class _ClientFaultWithoutTraceback(logging.Filter):
    """uvicorn logs a client's invalid UTF-8 text frame (it closes the socket with 1007) with a
    traceback, as if it were a server fault; keep the line, drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Invalid UTF-8 sequence received from client"):
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


logging.getLogger("uvicorn.error").addFilter(_ClientFaultWithoutTraceback())

AUTH_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
DEADLINE_STEP_S = 1.0
CLOSE_AUTH, CLOSE_NOT_FOUND, CLOSE_AUTH_TIMEOUT, CLOSE_RESYNC = 4001, 4004, 4008, 4009
CLOSE_CROWDED, CLOSE_SERVER_ERROR = 4029, 1011
WS_ORIGIN: SessionOrigin = "api"
"""The door of WebSocket commands: the socket serves every client (the web app, the CLI)."""
COMMANDS = ("subscribe", "prompt", "cancel-prompt", "stop", "typing", "presence", "history", "ping")


BATCH_MAX_FRAMES = 256
BATCH_MAX_CHARS = 256 * 1024
"""A ``batch`` message holds at most this many frames, and about this many characters."""


def batched(texts: list[str]) -> list[str]:
    """Frames as the messages to send a client that reads ``batch`` messages: one frame
    alone as it is, several in a row as ``{"type": "batch", "frames": [...]}`` (in order, each
    message within the limits above). A fan-out to many clients costs a send per message per
    client, so under load, when frames wait, a client costs one send, not one per frame."""
    if len(texts) < 2:
        return texts
    out: list[str] = []
    group: list[str] = []
    size = 0
    for text in texts:
        if group and (len(group) >= BATCH_MAX_FRAMES or size + len(text) > BATCH_MAX_CHARS):
            out.append(_batch(group))
            group, size = [], 0
        group.append(text)
        size += len(text) + 1
    out.append(_batch(group))
    return out


def _batch(group: list[str]) -> str:
    if len(group) == 1:
        return group[0]
    return '{"type":"batch","frames":[' + ",".join(group) + "]}"


class _Close(Exception):
    """End the socket with a close code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore")


_F = TypeVar("_F", bound=_Frame)


class _Subscribe(_Frame):
    token: StrictStr = Field(max_length=WS_TOKEN_MAX_CHARS)
    since_seq: StrictInt | None = Field(None, ge=0, le=MAX_SEQ)
    batch: StrictBool = False
    """The client reads ``batch`` messages: frames waiting together go out as one message."""


class _Prompt(_Frame):
    content: StrictStr
    model: StrictStr | None = Field(None, max_length=300)
    effort: StrictStr | None = Field(None, max_length=16)
    client_request_id: StrictStr | None = None


class _Cancel(_Frame):
    prompt_id: StrictStr = Field(max_length=64)


class _Presence(_Frame):
    status: Literal["active", "idle"] = "active"


class _History(_Frame):
    before_seq: StrictInt | None = Field(None, ge=1, le=MAX_SEQ)
    limit: StrictInt = Field(200, ge=1, le=MAX_SEQ)


def _invalid(exc: ValidationError, kind: str) -> InvalidInput:
    """A validation failure as a message naming fields and rules, never the values sent."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or kind}: {e['msg']}" for e in exc.errors()[:5]
    )
    return InvalidInput(f"Invalid {kind} message: {problems}", hint="See docs/sessions.md")


def _fanout(ws: WebSocket, state: ControlPlane) -> Fanout:
    """The process's fan-out of bus messages to its sockets (one per app)."""
    fanout: Fanout | None = getattr(ws.app.state, "ws_fanout", None)
    if fanout is None:
        fanout = ws.app.state.ws_fanout = Fanout(
            state.manager.deps.events, state.settings.sessions.ws_queue_frames
        )
    return fanout


class _Connection:
    def __init__(
        self,
        ws: WebSocket,
        state: ControlPlane,
        session_id: str,
        user: User,
        token_id: str,
        *,
        batch: bool = False,
    ) -> None:
        self.ws = ws
        self.batch = batch
        self.state = state
        self.session_id = session_id
        self.user = user
        self.token_id = token_id
        self.client_id = secrets.token_hex(8)
        self.last_seq = 0
        self.send_timeout_s = state.settings.sessions.ws_send_timeout_s
        self._send_lock = asyncio.Lock()

    async def authorise(self) -> None:
        """Raise ``_Close`` unless the parent token is live and its user may see the session."""
        await _authorise(self.state, self.session_id, self.user.id, self.token_id)

    async def send_frames(self, texts: list[str]) -> None:
        """Send frames in order, without another sender's frame in between, or close with 4009
        if the client does not take one within the send timeout: a client that stops reading
        must not hold a task and a growing buffer forever."""
        if not texts:
            return
        loop = asyncio.get_running_loop()
        timeout_s = self.send_timeout_s
        try:
            async with self._send_lock:
                moved = loop.time()
                async with asyncio.timeout_at(moved + timeout_s) as deadline:
                    for text in texts:
                        await self.ws.send_text(text)
                        # A frame taken: the client has the send timeout again from now. The
                        # deadline moves at most once a second, not once per frame (a timer
                        # per frame was a fifth of the cost of a fan-out).
                        now = loop.time()
                        if now - moved >= DEADLINE_STEP_S:
                            deadline.reschedule(now + timeout_s)
                            moved = now
        except TimeoutError:
            raise _Close(CLOSE_RESYNC, "Too slow to read; reconnect with since_seq") from None

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_frames([encode(message)])

    async def error(self, exc: OpenInspectError, **extra: Any) -> None:
        if isinstance(exc, StoreError):  # the answer names no cause; the log keeps it
            log.warning("store error answered on a socket: %s", exc.code, exc_info=exc)
        await self.send(
            {"type": "error", "code": exc.code, "message": exc.message, "hint": exc.hint, **extra}
        )

    async def subscribed(self, since_seq: int | None) -> None:
        limits = self.state.manager.deps.settings.sessions
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
        session = snapshot["session"]
        if isinstance(session.get("repo_url"), str):  # members see no server paths
            session["repo_url"] = origin_shown_to(self.user, session["repo_url"])
        await self.send(
            {
                "type": "subscribed",
                **snapshot,
                "events": [event_shown_to(self.user, dump_event(e)) for e in events],
                "has_more": has_more,
                "reset": reset,
                "last_seq": self.last_seq,
            }
        )

    async def forward(self, queue: ClientQueue) -> None:
        """Send what the session's fan-out queued for this socket, in order, skipping durable
        events already sent in the snapshot."""
        loop = asyncio.get_running_loop()
        # A batch client gets at most one message per interval: a frame that comes sooner after
        # the last message waits for the rest of it, so under load frames batch (a burst costs
        # one send per client) while a lone frame goes out at once.
        interval = self.state.settings.sessions.ws_batch_interval_ms / 1000 if self.batch else 0
        sent_at = -interval
        try:
            while True:
                if interval:
                    wait = sent_at + interval - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                texts = []
                for seq, text in await queue.take():
                    if seq is not None:
                        if seq <= self.last_seq:
                            continue
                        self.last_seq = seq
                    texts.append(text)
                sent_at = loop.time()
                await self.send_frames(batched(texts) if self.batch else texts)
        except ClientFellBehind:
            raise _Close(CLOSE_RESYNC, "Fell behind; reconnect with since_seq") from None

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "ping":
            await self.send({"type": "pong"})
            return
        if not isinstance(kind, str) or kind not in COMMANDS:
            raise InvalidInput(
                "Unknown message type", hint=f"Expected one of: {', '.join(COMMANDS)}"
            )
        await self.authorise()  # every command, not only the subscribe
        if kind == "subscribe":
            raise InvalidInput("Already subscribed", hint="Open a new socket to resubscribe")
        if kind == "history":
            await self.history(message)
            return
        commands, origin = self.state.commands, WS_ORIGIN
        if kind == "presence":
            status = _validated(_Presence, message, kind).status
            presence = SetPresence(
                session_id=self.session_id, client_id=self.client_id, status=status
            )
            await commands.handle(self.user, presence, origin=origin)
        elif kind == "prompt":
            body = _validated(_Prompt, message, kind)
            try:
                command = SubmitPrompt(session_id=self.session_id, **body.model_dump())
                prompt = await commands.handle(self.user, command, origin=origin)
            except ValidationError as exc:
                await self.error(_invalid(exc, kind), client_request_id=body.client_request_id)
                return
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
            prompt_id = _validated(_Cancel, message, kind).prompt_id
            cancel = CancelPrompt(session_id=self.session_id, prompt_id=prompt_id)
            await commands.handle(self.user, cancel, origin=origin)
        elif kind == "stop":
            await commands.handle(self.user, Stop(session_id=self.session_id), origin=origin)
        else:  # typing
            await commands.handle(self.user, Typing(session_id=self.session_id), origin=origin)

    async def history(self, message: dict[str, Any]) -> None:
        page_max = self.state.manager.deps.settings.sessions.history_page_max
        body = _validated(_History, message, "history")
        events, has_more = await newest_window(
            self.state.store.events,
            self.session_id,
            before_seq=body.before_seq,
            max_events=min(body.limit, page_max),
            max_chars=self.state.manager.deps.settings.sessions.replay_max_bytes,
        )
        await self.send(
            {
                "type": "history-page",
                "events": [event_shown_to(self.user, dump_event(e)) for e in events],
                "has_more": has_more,
            }
        )


def _validated(model: type[_F], message: dict[str, Any], kind: str) -> _F:
    try:
        return model.model_validate(message)
    except ValidationError as exc:
        raise _invalid(exc, kind) from None


async def _authorise(state: ControlPlane, session_id: str, user_id: str, token_id: str) -> User:
    """The user, fresh from the database, if the token is live and they may see the session."""
    user = await state.store.users.live_token_user(token_id)
    if user is None or user.id != user_id:
        raise _Close(CLOSE_AUTH, "The token was revoked or has expired")
    try:
        await ensure_can_see(state.store, user, session_id)
    except SessionNotFound:
        raise _Close(CLOSE_NOT_FOUND, "No such session") from None
    return user


async def _authenticate(
    ws: WebSocket, state: ControlPlane, session_id: str
) -> tuple[User, str, _Subscribe]:
    """Wait for a valid subscribe; malformed frames before it get ``error`` messages."""
    deadline = asyncio.get_running_loop().time() + AUTH_TIMEOUT_S
    try:
        async with asyncio.timeout_at(deadline):
            sub = await _first_subscribe(ws)
    except TimeoutError:
        raise _Close(CLOSE_AUTH_TIMEOUT, "No subscribe message in time") from None
    try:
        claims = state.ws_tokens.verify(sub.token, session_id)
    except AuthError as exc:
        raise _Close(CLOSE_AUTH, exc.message[:120]) from None
    user = await _authorise(state, session_id, claims.user_id, claims.token_id)
    try:
        await state.manager.get(session_id)
    except SessionNotFound:
        raise _Close(CLOSE_NOT_FOUND, "No such session") from None
    return user, claims.token_id, sub


async def _first_subscribe(ws: WebSocket) -> _Subscribe:
    while True:
        received = await ws.receive()
        if received["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(received.get("code", 1000))
        try:
            message = parse_incoming(received)
            kind = message.get("type")
            if kind == "ping":
                await ws.send_text(encode({"type": "pong"}))
                continue
            if kind != "subscribe":
                raise InvalidInput(
                    "The first message must be subscribe", hint="See docs/sessions.md"
                )
            return _validated(_Subscribe, message, "subscribe")
        except InvalidInput as exc:
            error = {"type": "error", "code": exc.code, "message": exc.message, "hint": exc.hint}
            await ws.send_text(encode(error))


@router.websocket("/api/sessions/{session_id}/ws")
async def session_socket(ws: WebSocket, session_id: str) -> None:
    state: ControlPlane = ws.app.state.control_plane
    await ws.accept()
    try:
        user, token_id, sub = await _authenticate(ws, state, session_id)
        conn = _Connection(ws, state, session_id, user, token_id, batch=sub.batch)
        await _serve(conn, sub.since_seq)
    except _Close as close:
        await _close(ws, close.code, close.reason)
    except WebSocketDisconnect:
        return
    except OpenInspectError as exc:  # the store failed under the socket (the log has why)
        log.warning("session socket ended by %s", exc.code, exc_info=exc)
        await _close(ws, CLOSE_SERVER_ERROR, exc.message[:120])


async def _serve(conn: _Connection, since_seq: int | None) -> None:
    """Run the reader, the sender, the periodic re-check and the watch for falling behind
    until one of them ends."""
    state, session_id = conn.state, conn.session_id
    presence = state.manager.presence
    async with _fanout(conn.ws, state).join(session_id) as queue:
        await conn.subscribed(since_seq)
        try:  # the leave below also undoes a join that failed half-way
            try:
                await presence.join(session_id, conn.client_id, conn.user.id, conn.user.name)
            except WatcherLimitReached as exc:
                raise _Close(CLOSE_CROWDED, exc.message[:120]) from None
            tasks = [
                asyncio.create_task(_read(conn)),
                asyncio.create_task(conn.forward(queue)),
                asyncio.create_task(_cut_off(queue)),
                asyncio.create_task(_recheck(conn)),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, _Close, Exception):
                        await task
            for task in done:
                failure = None if task.cancelled() else task.exception()
                if failure is not None:
                    raise failure  # a _Close ends the socket with its code
        finally:
            with contextlib.suppress(Exception):
                await presence.leave(session_id, conn.client_id)


async def _cut_off(queue: ClientQueue) -> NoReturn:
    await queue.wait_cut_off()
    raise _Close(CLOSE_RESYNC, "Fell behind; reconnect with since_seq")


async def _recheck(conn: _Connection) -> NoReturn:
    """Re-check the token and the user's access, and keep ``sessions.watched_at`` fresh so the
    server running the session's sandbox (maybe another one) knows someone is watching."""
    interval = conn.state.settings.sessions.ws_auth_recheck_s
    sessions = conn.state.store.sessions
    touched = checked = time.monotonic()
    await sessions.touch_watched(conn.session_id, utcnow())
    while True:
        await asyncio.sleep(min(interval, WATCH_TOUCH_S))
        now = time.monotonic()
        if now - checked >= interval:
            checked = now
            await conn.authorise()
        if now - touched >= WATCH_TOUCH_S:
            touched = now
            await sessions.touch_watched(conn.session_id, utcnow())


async def _read(conn: _Connection) -> None:
    while True:
        received = await conn.ws.receive()
        if received["type"] == "websocket.disconnect":
            return
        try:
            await conn.handle(parse_incoming(received))
        except OpenInspectError as exc:
            await conn.error(exc)


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    """Close with ``code``; a client that does not read cannot take even the close frame, so
    past ``CLOSE_TIMEOUT_S`` the connection is dropped."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await ws.close(code, reason)
    except TimeoutError:
        _abort(ws)
    except (RuntimeError, OSError, WebSocketDisconnect):
        return  # already closed by the other side


def _abort(ws: WebSocket) -> None:
    """Drop the TCP connection under the ASGI server (uvicorn's protocol owns the transport):
    closing gracefully would wait for a peer that is not reading to take the buffered bytes."""
    protocol = getattr(getattr(ws, "_send", None), "__self__", None)
    transport = getattr(protocol, "transport", None)
    if transport is not None:
        transport.abort()
    else:
        log.warning("could not drop a WebSocket connection whose client stopped reading")
