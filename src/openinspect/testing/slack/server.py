"""``FakeSlack``: a local Slack workspace speaking Slack's wire protocols, so ``slack_sdk``'s
clients (Web API, signature verifier, Socket Mode) run against it unchanged::

    with FakeSlack(signing_secret="s3cret") as slack:
        slack.events_url = "http://127.0.0.1:8000/slack/events"
        slack.add_user("U1", name="alice", email="alice@example.com")
        slack.add_channel("C1", name="eng")
        ts = slack.post_user_message("C1", "U1", "<@UBOT> fix the bug")
        await slack.await_deliveries()
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)

Users act through the fake (``post_user_message``, ``open_home``, ``click``…); the fake sends
the app the events Slack would (see ``delivery``) in the background, in order. The app acts
through the Web API; tests read the result back (``messages``, ``thread``, ``home_view``…).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp

from openinspect.testing.background import STOP_TIMEOUT_S, BackgroundServer, url_host
from openinspect.testing.deliveries import ChangeWaits, DeliveryWaits
from openinspect.testing.slack import shapes
from openinspect.testing.slack.delivery import Deliverer, encode, signed_headers
from openinspect.testing.slack.http import Failure, Failures, WebApi
from openinspect.testing.slack.records import (
    ApiCall,
    Channel,
    Delivery,
    DeliveryKind,
    Ephemeral,
    Message,
    User,
    View,
)
from openinspect.testing.slack.socket_mode import SocketHub
from openinspect.testing.slack.state import Identity, SlackState

DEFAULT_RETRY_DELAYS_S = (0.0, 0.5, 1.0)
DEFAULT_ACK_TIMEOUT_S = 3.0
DEFAULT_WAIT_S = 10.0
RAW_TIMEOUT_S = 10.0
OTHER_BOT_ID = "B0OTHER"

Raw = tuple[int, dict[str, str], bytes]
"""(status, headers, body) of one raw delivery."""


class FakeSlack(BackgroundServer, DeliveryWaits[Delivery], ChangeWaits):
    """The fake, served from a background thread (``start``/``stop``, ``with``, ``async with``)."""

    label = "fake-slack"
    deliverer: Deliverer

    def __init__(
        self,
        *,
        signing_secret: str = "s3cret",  # noqa: S107 - a fake's well-known test secret
        bot_token: str = "xoxb-test",  # noqa: S107
        app_token: str = "xapp-test",  # noqa: S107
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        app_id: str = "A0001",
        events_url: str | None = None,
        interactions_url: str | None = None,
        retry_delays_s: Sequence[float] = DEFAULT_RETRY_DELAYS_S,
        ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.app_token = app_token
        self.events_url = events_url
        self.interactions_url = interactions_url
        self.ack_timeout_s = ack_timeout_s
        self.state = SlackState(
            Identity(team_id=team_id, bot_user_id=bot_user_id, bot_id=bot_id, app_id=app_id)
        )
        self.hub = SocketHub(self.state)
        self.failures = Failures()
        self.deliverer = Deliverer(
            signing_secret=signing_secret,
            hub=self.hub,
            url_for=self._url_for,
            retry_delays_s=retry_delays_s,
            ack_timeout_s=ack_timeout_s,
        )
        self.response_targets: dict[str, tuple[str, str, str]] = {}
        """response_url id → (channel, message ts, the user who acted)."""
        self._web = WebApi(self.state, bot_token, app_token, self.failures, self._socket_url)
        self._app = self._build_app()

    # ------------------------------------------------------------------ lifecycle

    def _build_app(self) -> ASGIApp:
        from openinspect.testing.slack import control

        routes = [
            Route("/api/{method}", self._web.endpoint, methods=["GET", "POST"]),
            WebSocketRoute("/socket-mode", self.hub.endpoint),
            *control.routes(self),
        ]
        return Starlette(routes=routes)

    def _asgi_app(self) -> ASGIApp:
        return self._app

    def _on_listen(self) -> None:
        self.deliverer.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop delivering, close sockets and stop serving. Safe to call twice."""
        self.deliverer.stop()
        if self._server is not None:
            self.hub.close_all()
        super().stop(timeout_s)

    def _url_for(self, kind: DeliveryKind) -> str | None:
        return self.events_url if kind == "event" else self.interactions_url

    def _socket_url(self) -> str:
        ticket = self.hub.issue_ticket()
        return f"ws://{url_host(self.host)}:{self.port}/socket-mode?ticket={ticket}"

    @property
    def changed(self) -> threading.Condition:
        """Notified whenever the workspace changes (``wait_until`` waits on it)."""
        return self.state.changed

    @property
    def api_url(self) -> str:
        """The Web API base, ``http://127.0.0.1:PORT/api/`` (``AsyncWebClient(base_url=…)``)."""
        return f"{self.base_url}/api/"

    @property
    def team_id(self) -> str:
        return self.state.identity.team_id

    @property
    def bot_user_id(self) -> str:
        return self.state.identity.bot_user_id

    @property
    def bot_id(self) -> str:
        return self.state.identity.bot_id

    @property
    def app_id(self) -> str:
        return self.state.identity.app_id

    def settings_env(self) -> dict[str, str]:
        """The ``OPENINSPECT_SLACK__*`` variables that point a server at this fake."""
        return {
            "OPENINSPECT_SLACK__BOT_TOKEN": self.bot_token,
            "OPENINSPECT_SLACK__SIGNING_SECRET": self.signing_secret,
            "OPENINSPECT_SLACK__APP_TOKEN": self.app_token,
            "OPENINSPECT_SLACK__API_URL": self.api_url,
        }

    # ------------------------------------------------------------------ the workspace

    def add_user(
        self,
        user_id: str,
        *,
        name: str,
        email: str | None = None,
        real_name: str | None = None,
        display_name: str | None = None,
        is_bot: bool = False,
    ) -> User:
        user = User(
            id=user_id, name=name, email=email, real_name=real_name,
            display_name=display_name, is_bot=is_bot, bot_id=f"B{user_id}" if is_bot else None,
        )  # fmt: skip
        with self.state.lock:
            self.state.users[user_id] = user
        return user

    def add_channel(
        self, channel_id: str, *, name: str, is_private: bool = False, member: bool = True
    ) -> Channel:
        """A channel the bot is a member of (unless ``member=False``)."""
        channel = Channel(
            id=channel_id, name=name, channel_type="group" if is_private else "channel",
            is_member=member,
        )  # fmt: skip
        with self.state.lock:
            self.state.channels[channel_id] = channel
            self.state.messages.setdefault(channel_id, [])
        return channel

    def open_dm(self, user: str) -> str:
        """The id (``D…``) of the DM between the bot and ``user``."""
        self._user(user)
        return self.state.dm_with(user).id

    def _user(self, user_id: str) -> User:
        with self.state.lock:
            user = self.state.users.get(user_id)
        if user is None:
            raise KeyError(f"no user {user_id!r} in the fake Slack; add it with add_user first")
        return user

    def _channel(self, channel_id: str) -> Channel:
        channel = self.state.channel(channel_id)
        if channel is None:
            raise KeyError(f"no channel {channel_id!r}; add it with add_channel or open_dm")
        return channel

    # ------------------------------------------------------------------ people acting

    def post_user_message(
        self,
        channel: str,
        user: str,
        text: str,
        thread_ts: str | None = None,
        *,
        blocks: list[dict[str, Any]] | None = None,
    ) -> str:
        """Record ``user``'s message and deliver the events Slack would; returns its ts.

        In a channel: ``message`` (channel_type channel), and ``app_mention`` too when the text
        mentions the bot; in a DM: ``message`` with channel_type ``im``; nothing from a channel
        the bot is not a member of."""
        self._user(user)
        ch = self._channel(channel)
        state = self.state
        with state.lock:
            msg = Message(
                channel=ch.id, ts=state.next_ts(), text=text, user=user,
                blocks=blocks if blocks is not None else shapes.rich_text_blocks(text),
                thread_ts=self._thread_root(ch.id, thread_ts), client_msg_id=str(uuid.uuid4()),
            )  # fmt: skip
            state.add_message(msg)
            events: list[dict[str, Any]] = []
            # Slack sends the app nothing from a channel its bot is not in.
            mentioned = f"<@{state.identity.bot_user_id}>" in text
            if ch.is_member and ch.channel_type != "im" and mentioned:
                events.append(shapes.message_event(state, msg, ch, event_type="app_mention"))
            if ch.is_member:
                events.append(shapes.message_event(state, msg, ch, event_type="message"))
        for event in events:
            self._send_event(event)
        return msg.ts

    async def apost_user_message(
        self,
        channel: str,
        user: str,
        text: str,
        thread_ts: str | None = None,
        *,
        blocks: list[dict[str, Any]] | None = None,
    ) -> str:
        """``post_user_message`` for async tests (it never blocks: delivery is queued)."""
        return self.post_user_message(channel, user, text, thread_ts, blocks=blocks)

    def post_bot_message(
        self,
        channel: str,
        text: str,
        *,
        bot_id: str = OTHER_BOT_ID,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> str:
        """Another app's message (subtype ``bot_message``, ``bot_id``); delivers ``message``."""
        ch = self._channel(channel)
        state = self.state
        with state.lock:
            msg = Message(
                channel=ch.id, ts=state.next_ts(), text=text, bot_id=bot_id,
                subtype="bot_message", blocks=blocks,
                thread_ts=self._thread_root(ch.id, thread_ts),
            )  # fmt: skip
            state.add_message(msg)
            event = shapes.message_event(state, msg, ch, event_type="message")
        self._send_event(event)
        return msg.ts

    def _thread_root(self, channel: str, thread_ts: str | None) -> str | None:
        if thread_ts is None:
            return None
        parent = self.state.find(channel, thread_ts)
        if parent is None:
            raise KeyError(f"no message {thread_ts!r} in {channel!r} to reply to")
        return parent.thread_ts or parent.ts

    def open_home(self, user: str) -> Delivery:
        """``user`` opens the app's Home tab: delivers ``app_home_opened`` (tab home)."""
        self._user(user)
        dm = self.state.dm_with(user)
        with self.state.lock:
            event: dict[str, Any] = {
                "type": "app_home_opened",
                "user": user,
                "channel": dm.id,
                "tab": "home",
                "event_ts": self.state.next_ts(),
            }
            home = self.state.home.get(user)
            if home is not None:
                event["view"] = shapes.view_wire(self.state, home)
        return self._send_event(event)

    def send_custom_event(self, event: dict[str, Any]) -> Delivery:
        """Deliver any inner event (wrapped in the envelope), e.g. ``reaction_added``."""
        return self._send_event(dict(event))

    def _send_event(self, event: dict[str, Any]) -> Delivery:
        event_id = self.state.new_id("Ev")
        body = shapes.event_callback(self.state, event, event_id)
        return self.deliverer.enqueue("event", str(event.get("type", "")), body, event_id)

    def click(
        self,
        user: str,
        *,
        action_id: str,
        value: str | None = None,
        message: tuple[str, str] | None = None,
        view: Literal["home"] | None = None,
    ) -> dict[str, Any]:
        """``user`` clicks the button ``action_id`` on a message (``(channel, ts)``; an
        ephemeral's ``message_ts`` works too) or on their Home view: delivers ``block_actions``.
        Raises ``LookupError`` when no such element is there. Returns the payload."""
        return self._act(user, action_id, message, view, value=value, option_value=None)

    def select(
        self,
        user: str,
        *,
        action_id: str,
        option_value: str,
        message: tuple[str, str] | None = None,
        view: Literal["home"] | None = None,
    ) -> dict[str, Any]:
        """``user`` picks ``option_value`` in the select ``action_id``; as ``click``."""
        return self._act(user, action_id, message, view, value=None, option_value=option_value)

    def _act(
        self,
        user_id: str,
        action_id: str,
        message: tuple[str, str] | None,
        view: str | None,
        *,
        value: str | None,
        option_value: str | None,
    ) -> dict[str, Any]:
        if (message is None) == (view is None):
            raise ValueError("give exactly one of message=(channel, ts) or view='home'")
        user = self._user(user_id)
        state = self.state
        ident = state.identity
        with state.lock:
            action_ts = state.next_ts()
            payload: dict[str, Any] = {
                "type": "block_actions",
                "user": {
                    "id": user.id, "username": user.name, "name": user.name,
                    "team_id": ident.team_id,
                },
                "api_app_id": ident.app_id,
                "token": ident.verification_token,
                "trigger_id": state.trigger_for(user.id),
                "team": {"id": ident.team_id, "domain": ident.team_domain},
                "enterprise": None,
                "is_enterprise_install": False,
            }  # fmt: skip
            if message is not None:
                channel_id, ts = message
                ch = self._channel(channel_id)
                blocks, container = self._message_target(ch, ts, user.id, payload)
                payload["channel"] = {"id": ch.id, "name": ch.name}
                payload["container"] = container
            else:
                home = state.home.get(user.id)
                if home is None:
                    raise LookupError(f"{user.id} has no published Home view to click on")
                blocks = home.blocks
                payload["container"] = {"type": "view", "view_id": home.id}
                payload["view"] = shapes.view_wire(state, home)
            found = shapes.find_element(blocks, action_id)
            if found is None:
                ids = _action_ids(blocks)
                raise LookupError(f"no element with action_id {action_id!r} there; has {ids}")
            block_id, element = found
            action: dict[str, Any] = {
                "action_id": action_id,
                "block_id": block_id,
                "type": str(element.get("type", "button")),
                "action_ts": action_ts,
            }
            if option_value is not None:
                options = shapes.options_of(element)
                option = next((o for o in options if o.get("value") == option_value), None)
                if option is None:
                    values = [o.get("value") for o in options]
                    raise LookupError(f"{action_id!r} has no option {option_value!r}; has {values}")
                action["selected_option"] = {"text": option.get("text"), "value": option_value}
            else:
                if element.get("text") is not None:
                    action["text"] = element["text"]
                chosen = value if value is not None else element.get("value")
                if chosen is not None:
                    action["value"] = chosen
            payload["state"] = {"values": {}}
            if message is not None:
                # Slack gives a response_url for actions on messages, not on views.
                rid = uuid.uuid4().hex
                self.response_targets[rid] = (message[0], message[1], user.id)
                payload["response_url"] = f"{self.base_url}/_fake/respond/{rid}"
            payload["actions"] = [action]
        self.deliverer.enqueue("interaction", "block_actions", payload, state.new_id("In"))
        return payload

    def _message_target(
        self, ch: Channel, ts: str, user: str, payload: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        msg = self.state.find(ch.id, ts)
        if msg is not None:
            payload["message"] = shapes.message_wire(self.state, msg)
            container = {
                "type": "message", "message_ts": ts, "channel_id": ch.id,
                "is_ephemeral": False,
            }  # fmt: skip
            if msg.is_reply:
                container["thread_ts"] = msg.thread_ts
            return msg.blocks or [], container
        eph = next(
            (
                e
                for e in self.state.ephemerals
                if e.channel == ch.id and e.message_ts == ts and e.user == user
            ),
            None,
        )
        if eph is None:
            raise LookupError(f"no message {ts!r} in {ch.id!r} that {user} can see")
        container = {"type": "message", "message_ts": ts, "channel_id": ch.id, "is_ephemeral": True}
        return eph.blocks or [], container

    # ------------------------------------------------------------------ raw deliveries

    def send_event(
        self,
        body: dict[str, Any] | bytes,
        *,
        timestamp: str | int | None = None,
        signature: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> Raw:
        """One raw POST to ``events_url`` from this thread, optionally forged (a stale
        ``timestamp``, a wrong ``signature``); returns (status, headers, body)."""
        return self._raw("event", body, timestamp, signature, retry_num, retry_reason)

    def send_interaction(
        self,
        payload: dict[str, Any] | bytes,
        *,
        timestamp: str | int | None = None,
        signature: str | None = None,
    ) -> Raw:
        """One raw POST to ``interactions_url`` (a dict is sent as ``payload=<json>``)."""
        return self._raw("interaction", payload, timestamp, signature, None, "")

    async def asend_event(
        self,
        body: dict[str, Any] | bytes,
        *,
        timestamp: str | int | None = None,
        signature: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> Raw:
        """``send_event`` for a receiver on the caller's own loop."""
        return await self._araw("event", body, timestamp, signature, retry_num, retry_reason)

    async def asend_interaction(
        self,
        payload: dict[str, Any] | bytes,
        *,
        timestamp: str | int | None = None,
        signature: str | None = None,
    ) -> Raw:
        return await self._araw("interaction", payload, timestamp, signature, None, "")

    def _raw_request(
        self,
        kind: DeliveryKind,
        body: dict[str, Any] | bytes,
        timestamp: str | int | None,
        signature: str | None,
        retry_num: int | None,
        retry_reason: str,
    ) -> tuple[str, bytes, dict[str, str]]:
        url = self._url_for(kind)
        if url is None:
            name = "events_url" if kind == "event" else "interactions_url"
            raise RuntimeError(f"set slack.{name} before sending to it")
        if isinstance(body, bytes):
            raw = body
            content_type = (
                "application/json" if kind == "event" else "application/x-www-form-urlencoded"
            )
        else:
            raw, content_type = encode(kind, body)
        ts = str(timestamp) if timestamp is not None else None
        headers = signed_headers(self.signing_secret, raw, content_type, timestamp=ts)
        if signature is not None:
            headers["X-Slack-Signature"] = signature
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        return url, raw, headers

    def _raw(self, kind: DeliveryKind, *args: Any) -> Raw:
        url, raw, headers = self._raw_request(kind, *args)
        with httpx.Client(trust_env=False, timeout=RAW_TIMEOUT_S) as http:
            response = http.post(url, content=raw, headers=headers)
        return response.status_code, dict(response.headers), response.content

    async def _araw(self, kind: DeliveryKind, *args: Any) -> Raw:
        url, raw, headers = self._raw_request(kind, *args)
        async with httpx.AsyncClient(trust_env=False, timeout=RAW_TIMEOUT_S) as http:
            response = await http.post(url, content=raw, headers=headers)
        return response.status_code, dict(response.headers), response.content

    def verify_url(self) -> Raw:
        """Send ``url_verification`` (as Slack does when the Events URL is set)."""
        return self.send_event(
            {
                "token": self.state.identity.verification_token,
                "challenge": uuid.uuid4().hex,
                "type": "url_verification",
            }
        )

    # ------------------------------------------------------------------ failures

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        status: int = 429,
        retry_after: int | None = 1,
        *,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls of ``method`` answer ``{ok:false,error}`` with ``status``
        (and ``Retry-After`` when given: slack_sdk's rate-limit handler reads it)."""
        if status != 429 and retry_after == 1 and error != "ratelimited":
            retry_after = None
        self.failures.add(method, Failure(error, status, retry_after), times)

    # ------------------------------------------------------------------ Socket Mode

    @property
    def socket_connected(self) -> bool:
        return self.hub.connected

    def wait_for_socket(
        self, timeout_s: float = DEFAULT_WAIT_S, *, connects: int | None = None
    ) -> None:
        """Until a Socket Mode client is connected (and ``connects`` were accepted in all)."""
        self.hub.wait_connected(timeout_s, connects=connects)

    async def await_socket(
        self, timeout_s: float = DEFAULT_WAIT_S, *, connects: int | None = None
    ) -> None:
        await asyncio.to_thread(self.hub.wait_connected, timeout_s, connects=connects)

    @property
    def socket_connects(self) -> int:
        """Socket Mode connections accepted so far."""
        return self.hub.connects

    def disconnect_socket(self, reason: str = "refresh_requested") -> int:
        """Send ``{"type":"disconnect"}`` on each connection, then close it once the client has
        reconnected (slack_sdk does on that message). Returns how many were told."""
        return self.hub.disconnect(reason)

    def socket_frames(self) -> list[dict[str, Any]]:
        """The JSON frames the app sent over Socket Mode (its acks)."""
        return self.hub.frames()

    # ------------------------------------------------------------------ inspection

    def messages(self, channel: str, thread_ts: str | None = None) -> list[Message]:
        """The channel's messages in posting order (top level and replies, deleted included);
        with ``thread_ts``, that thread, parent first (as ``thread``)."""
        if thread_ts is not None:
            return self.thread(channel, thread_ts)
        return self.state.snapshot(lambda: list(self.state.messages.get(channel, [])))

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The thread's parent then its replies (deleted ones left out)."""
        return self.state.snapshot(lambda: self.state.replies(channel, thread_ts))

    def message(self, channel: str, ts: str) -> Message | None:
        return self.state.snapshot(lambda: self.state.find(channel, ts))

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        return self.state.snapshot(
            lambda: [
                e
                for e in self.state.ephemerals
                if channel in (None, e.channel) and user in (None, e.user)
            ]
        )

    def home_view(self, user: str) -> View | None:
        """The Home view last published for ``user``."""
        return self.state.snapshot(lambda: self.state.home.get(user))

    def modals(self, user: str | None = None) -> list[View]:
        """Modals opened with ``views.open``."""
        return self.state.snapshot(lambda: [v for v in self.state.modals if user in (None, v.user)])

    def calls(self, method: str | None = None) -> list[ApiCall]:
        """Web API calls answered so far (``method`` filters)."""
        with self.state.lock:
            return [c for c in self.state.calls if method in (None, c.method)]

    def reactions(self, channel: str, ts: str) -> dict[str, list[str]]:
        msg = self.message(channel, ts)
        return msg.reactions if msg is not None else {}


def _action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    for block in blocks:
        elements = list(block.get("elements") or []) if isinstance(block, dict) else []
        for key in ("accessory", "element"):
            if isinstance(block, dict) and isinstance(block.get(key), dict):
                elements.append(block[key])
        ids.extend(
            str(e["action_id"]) for e in elements if isinstance(e, dict) and "action_id" in e
        )
    return ids
