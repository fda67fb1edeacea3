"""Control endpoints under ``/_fake`` so a person can drive the fake with curl, and the
``response_url`` that ``block_actions`` payloads carry.

- ``POST /_fake/messages {channel, user, text, thread_ts?}`` → ``{ts}``
- ``GET /_fake/messages?channel=&thread_ts=`` → ``{messages:[…]}``
- ``POST /_fake/home {user}`` → ``{event_id}``
- ``POST /_fake/click {user, action_id, value?, channel?, ts?, view?}`` → ``{trigger_id}``
- ``GET /_fake/deliveries[?wait_s=N]`` → ``{deliveries:[{id, type, attempts, done}]}``, after
  waiting up to N seconds (at most 30) for every delivery to be answered or given up on
- ``POST /_fake/respond/<id>`` (the response_url): ``{text, blocks?, replace_original?,
  delete_original?, response_type?, thread_ts?}``
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from openinspect.testing.doors import (
    MAX_FIELD_CHARS,
    control_error,
    json_object,
    string_field,
    wait_asked,
)
from openinspect.testing.slack.records import Ephemeral, Message

if TYPE_CHECKING:
    from openinspect.testing.slack.server import FakeSlack

UNKNOWN = "unknown user, channel or thread (add them first)"
"""Errors name the kind of thing, never the value sent."""


def routes(fake: FakeSlack) -> list[Route]:
    async def post_message(request: Request) -> Response:
        data = await json_object(request)
        if isinstance(data, Response):
            return data
        try:
            ts = fake.post_user_message(
                str(string_field(data, "channel")),
                str(string_field(data, "user")),
                str(string_field(data, "text")),
                string_field(data, "thread_ts", required=False),
            )
        except ValueError as exc:
            return control_error(400, str(exc))
        except KeyError:
            return control_error(404, UNKNOWN)
        return JSONResponse({"ok": True, "ts": ts})

    async def list_messages(request: Request) -> Response:
        channel = request.query_params.get("channel", "")
        thread_ts = request.query_params.get("thread_ts") or None
        msgs = fake.messages(channel, thread_ts)
        return JSONResponse({"ok": True, "messages": [dataclasses.asdict(m) for m in msgs]})

    async def list_ephemerals(request: Request) -> Response:
        channel = request.query_params.get("channel") or None
        user = request.query_params.get("user") or None
        found = fake.ephemerals(channel, user)
        return JSONResponse({"ok": True, "ephemerals": [dataclasses.asdict(e) for e in found]})

    async def home(request: Request) -> Response:
        data = await json_object(request)
        if isinstance(data, Response):
            return data
        try:
            delivery = fake.open_home(str(string_field(data, "user")))
        except ValueError as exc:
            return control_error(400, str(exc))
        except KeyError:
            return control_error(404, UNKNOWN)
        return JSONResponse({"ok": True, "event_id": delivery.id})

    async def click(request: Request) -> Response:
        data = await json_object(request)
        if isinstance(data, Response):
            return data
        try:
            channel = string_field(data, "channel", required=False)
            ts = string_field(data, "ts", required=False)
            view = string_field(data, "view", required=False)
            if view not in (None, "home"):
                raise ValueError("expected view: 'home'")
            payload = fake.click(
                str(string_field(data, "user")),
                action_id=str(string_field(data, "action_id")),
                value=string_field(data, "value", required=False),
                message=(channel, ts) if channel and ts else None,
                view="home" if view else None,
            )
        except ValueError as exc:
            return control_error(400, str(exc))
        except KeyError:
            return control_error(404, UNKNOWN)
        except LookupError:
            return control_error(400, "no element with that action_id on that message or view")
        return JSONResponse({"ok": True, "trigger_id": payload["trigger_id"]})

    async def deliveries(request: Request) -> Response:
        refused = await wait_asked(request, fake.wait_for_deliveries)
        if refused is not None:
            return refused
        out = [
            {"id": d.id, "type": d.type, "attempts": [a.result for a in d.attempts], "done": d.done}
            for d in fake.deliveries
        ]
        return JSONResponse({"ok": True, "deliveries": out})

    async def respond(request: Request) -> Response:
        data = await json_object(request)
        if isinstance(data, Response):
            return data
        return respond_to(fake, request.path_params["rid"], data)

    return [
        Route("/_fake/messages", post_message, methods=["POST"]),
        Route("/_fake/messages", list_messages, methods=["GET"]),
        Route("/_fake/ephemerals", list_ephemerals, methods=["GET"]),
        Route("/_fake/home", home, methods=["POST"]),
        Route("/_fake/click", click, methods=["POST"]),
        Route("/_fake/deliveries", deliveries, methods=["GET"]),
        Route("/_fake/respond/{rid}", respond, methods=["POST"]),
    ]


def respond_to(fake: FakeSlack, rid: str, data: dict[str, Any]) -> Response:
    """A ``response_url`` POST: replace or delete the clicked message, or post a new one
    (ephemeral to the clicker unless ``response_type`` is ``in_channel``)."""
    target = fake.response_targets.get(rid)
    if target is None:
        return control_error(404, "no_such_response_url")
    channel, ts, user = target
    state = fake.state
    text = data.get("text")
    blocks = data.get("blocks")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_FIELD_CHARS):
        return control_error(400, "msg_too_long")
    if blocks is not None and (not isinstance(blocks, list) or len(blocks) > 50):
        return control_error(400, "invalid_blocks")
    with state.lock:
        msg = state.find(channel, ts) if ts else None
        if data.get("delete_original") is True and msg is not None:
            msg.deleted = True
        elif data.get("replace_original") is True and msg is not None:
            msg.text = text if isinstance(text, str) else msg.text
            msg.blocks = blocks if isinstance(blocks, list) else msg.blocks
            msg.edits += 1
        elif data.get("response_type") == "in_channel":
            thread = data.get("thread_ts")
            state.add_message(
                Message(
                    channel=channel,
                    ts=state.next_ts(),
                    text=text or "",
                    user=state.identity.bot_user_id,
                    bot_id=state.identity.bot_id,
                    blocks=blocks,
                    thread_ts=thread if isinstance(thread, str) else None,
                )
            )
        else:
            state.ephemerals.append(
                Ephemeral(
                    channel=channel,
                    user=user,
                    message_ts=state.next_ts(),
                    text=text or "",
                    blocks=blocks,
                )
            )
        state.changed.notify_all()
    return JSONResponse({"ok": True})
