"""The Slack app's doors. ``POST /slack/events`` (the Events API) and ``POST
/slack/interactions`` (buttons and selects) are open but signed by Slack (``verify``: 401
otherwise), capped at ``slack.event_max_bytes`` by the body-size middleware (413), and
acknowledge once the delivery is in the inbox (``integrations.slack.inbound``). The link API
lets a signed-in person see, then confirm with an explicit POST, which Slack user a one-time
link code would link to their account. With Slack off every door is 404 ``not_configured``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from openinspect.api.deps import CurrentUser, State
from openinspect.api.errors import documented
from openinspect.controlplane import ControlPlane
from openinspect.errors import NotConfigured, UnsupportedMediaType
from openinspect.store.slack_people import LINK_CODE_MAX

if TYPE_CHECKING:  # slack_sdk and aiohttp load only on a server with Slack on
    from openinspect.integrations.slack.inbound import SlackInbound

router = APIRouter(tags=["slack"])
LinkCode = Annotated[str, Path(min_length=1, max_length=LINK_CODE_MAX)]


class SlackAck(BaseModel):
    ok: bool = True
    challenge: str | None = None
    """The ``url_verification`` challenge, answered back."""


class SlackLinkInfo(BaseModel):
    team_id: str
    slack_user_id: str
    slack_name: str | None
    expires_at: datetime


class SlackLinkRequest(BaseModel):
    code: str = Field(min_length=1, max_length=LINK_CODE_MAX)


class SlackLinked(BaseModel):
    ok: bool = True
    team_id: str
    slack_user_id: str


def _inbound(state: ControlPlane) -> SlackInbound:
    inbound = state.slack_inbound
    if inbound is None:
        raise NotConfigured(
            "Slack is not configured on this server",
            hint="An admin sets OPENINSPECT_SLACK__BOT_TOKEN and OPENINSPECT_SLACK__SIGNING_SECRET",
        )
    return inbound


def _media(request: Request, expected: str) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != expected:
        raise UnsupportedMediaType(
            f"Slack sends this as {expected}", hint="This URL takes only Slack's own requests"
        )


_FROM_SLACK = documented(400, 401, 404, 413, 415)


@router.post("/slack/events", responses=_FROM_SLACK)
async def slack_events(request: Request, state: State) -> SlackAck:
    """An Events API delivery (or its URL check), signed by Slack."""
    from openinspect.integrations.slack.events import UrlVerification
    from openinspect.integrations.slack.verify import parse_event, verify

    inbound = _inbound(state)
    body = await request.body()  # capped by the body-size middleware (/slack/)
    verify(state.settings.slack, request.headers, body)
    _media(request, "application/json")
    parsed = parse_event(body)
    if isinstance(parsed, UrlVerification):
        return SlackAck(challenge=parsed.challenge)
    if parsed is not None:
        raw: dict[str, Any] = json.loads(body)
        await inbound.accept_event(parsed, raw)
    return SlackAck()


@router.post("/slack/interactions", responses=_FROM_SLACK)
async def slack_interactions(request: Request, state: State) -> SlackAck:
    """An interactivity delivery (a button or a select), signed by Slack."""
    from openinspect.integrations.slack.verify import parse_interaction, verify

    inbound = _inbound(state)
    body = await request.body()
    verify(state.settings.slack, request.headers, body)
    _media(request, "application/x-www-form-urlencoded")
    actions, raw = parse_interaction(body)
    if actions is not None:
        await inbound.accept_interaction(actions, raw)
    return SlackAck()


@router.get("/api/slack/link/{code}", responses=documented(404, 410))
async def slack_link_info(code: LinkCode, user: CurrentUser, state: State) -> SlackLinkInfo:
    """Which Slack user the code would link to the caller (nothing is linked)."""
    from openinspect.integrations.slack import identity

    inbound = _inbound(state)
    found = await identity.describe_code(state.store, inbound.deps.client, code)
    return SlackLinkInfo(**found.__dict__)


@router.post("/api/slack/link", responses=documented(404, 410))
async def slack_link(body: SlackLinkRequest, user: CurrentUser, state: State) -> SlackLinked:
    """Link the code's Slack user to the caller; the code is used once."""
    from openinspect.integrations.slack import identity

    _inbound(state)
    found = await identity.redeem_code(state.store, body.code, user)
    return SlackLinked(team_id=found.team_id, slack_user_id=found.slack_user_id)
