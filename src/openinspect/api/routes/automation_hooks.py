"""The automations' inbound doors: ``/webhooks/automations/<id>`` (a generic webhook) and
``/webhooks/sentry/<id>`` (a Sentry internal integration). The body cap is the body-size
middleware's (set per path in ``api.app``: refused before it is read); the content type is
checked here; what a delivery does is ``automations.inbound``'s. A delivery that makes or finds
a run is answered 202, one that makes none (conditions, an alert that starts nothing) 200; an
unknown id and a bad secret are the same 401."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response, status
from pydantic import BaseModel

from openinspect.api.deps import State
from openinspect.api.errors import documented
from openinspect.automations import inbound
from openinspect.automations.runs import AutomationEngine
from openinspect.domain.automations import RunStatus
from openinspect.domain.commands import ID_MAX
from openinspect.errors import UnsupportedMediaType

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
AutomationId = Annotated[str, Path(min_length=1, max_length=ID_MAX)]
"""Longer is no automation's id: 422, whatever the door (it tells nothing of which ids exist)."""
Door = Callable[[AutomationEngine, str, Mapping[str, str], bytes], Awaitable[inbound.Delivery]]
JSON_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}
}


class HookResult(BaseModel):
    ok: bool = True
    outcome: Literal["fired", "duplicate", "skipped", "ignored"]
    """``fired``: this delivery recorded the run; ``duplicate``: an earlier one did;
    ``skipped``: no run (the conditions did not match, or the issue's session has not started
    yet); ``ignored``: a Sentry alert that starts nothing."""
    run_id: str | None = None
    status: RunStatus | None = None
    """The run's status (it may itself be ``skipped``: the automation is paused, or busy)."""
    duplicate: bool = False
    reason: str | None = None


def _json_only(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType(
            "A webhook delivery is JSON: Content-Type must be application/json",
            hint="Send the payload as a JSON document with Content-Type: application/json",
        )


def _answer(delivery: inbound.Delivery, response: Response) -> HookResult:
    run = delivery.run
    made = delivery.outcome in ("fired", "duplicate")
    response.status_code = status.HTTP_202_ACCEPTED if made else status.HTTP_200_OK
    return HookResult(
        outcome=delivery.outcome,
        run_id=run.id if run is not None else None,
        status=run.status if run is not None and made else None,
        duplicate=delivery.outcome == "duplicate",
        reason=delivery.reason if delivery.reason is not None else getattr(run, "reason", None),
    )


async def _deliver(
    door: Door, automation_id: str, request: Request, response: Response, state: State
) -> HookResult:
    _json_only(request)
    body = await request.body()  # capped by the body-size middleware (per door, in api.app)
    return _answer(await door(state.automations, automation_id, request.headers, body), response)


_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": HookResult, "description": "No run: skipped or ignored"},
    **documented(400, 401, 413, 415, 503),
}


@router.post(
    "/automations/{automation_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ANSWERS,
    openapi_extra=JSON_BODY,
)
async def automation_webhook(
    automation_id: AutomationId, request: Request, response: Response, state: State
) -> HookResult:
    """A delivery to a webhook automation (``automations.inbound.webhook``), at most
    ``inbound.WEBHOOK_BODY_MAX`` bytes."""
    return await _deliver(inbound.webhook, automation_id, request, response, state)


@router.post(
    "/sentry/{automation_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ANSWERS,
    openapi_extra=JSON_BODY,
)
async def sentry_webhook(
    automation_id: AutomationId, request: Request, response: Response, state: State
) -> HookResult:
    """A Sentry internal integration's delivery (``automations.inbound.sentry``), at most
    ``inbound.SENTRY_BODY_MAX`` bytes."""
    return await _deliver(inbound.sentry, automation_id, request, response, state)
