"""Inbound webhooks. ``/webhooks/github``: signature first, then delivery-id idempotency, then
the event. Later issues route more events through the same door."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel

from openinspect.api.deps import State
from openinspect.api.errors import documented
from openinspect.automations.github_door import GithubDoor
from openinspect.errors import InvalidInput, NotConfigured
from openinspect.scm.webhooks import verify_signature

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])
DELIVERY_ID_MAX = 100
EVENT_NAME_MAX = 64


class WebhookResult(BaseModel):
    delivery_id: str
    event: str
    outcome: str  # processed | duplicate | ignored


@router.post(
    "/github",
    status_code=status.HTTP_202_ACCEPTED,
    # 404 not_configured without a webhook secret; 401 a bad signature; 413 over the cap.
    responses=documented(401, 404, 413, 422),
)
async def github(request: Request, state: State) -> WebhookResult:
    secret = state.settings.github.webhook_secret
    if secret is None:
        raise NotConfigured(
            "GitHub webhooks are not configured on this server",
            hint="Set OPENINSPECT_GITHUB__WEBHOOK_SECRET to the App's webhook secret",
        )
    body = await request.body()  # bounded by the body-size middleware's /webhooks/ limit
    verify_signature(
        secret.get_secret_value().encode(), body, request.headers.get("x-hub-signature-256")
    )
    delivery_id = request.headers.get("x-github-delivery", "")
    event = request.headers.get("x-github-event", "")
    if not delivery_id or len(delivery_id) > DELIVERY_ID_MAX:
        raise InvalidInput("X-GitHub-Delivery is missing or too long")
    if not event or len(event) > EVENT_NAME_MAX:
        raise InvalidInput("X-GitHub-Event is missing or too long")
    try:
        payload: Any = json.loads(body)
    except ValueError as exc:
        raise InvalidInput("The webhook body is not JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidInput("The webhook body must be a JSON object")
    if not await state.store.webhooks.claim("github", delivery_id, event):
        return WebhookResult(delivery_id=delivery_id, event=event, outcome="duplicate")
    try:
        outcome = await _dispatch(state, event, payload, delivery_id)
    except BaseException:
        # Let GitHub's retry (or a manual redelivery) be processed rather than swallowed.
        await state.store.webhooks.release("github", delivery_id)
        raise
    return WebhookResult(delivery_id=delivery_id, event=event, outcome=outcome)


async def _dispatch(state: State, event: str, payload: dict[str, Any], delivery_id: str) -> str:
    outcome = "ignored"
    if event == "pull_request":
        record = await state.pulls.apply_webhook(payload)
        outcome = "processed" if record is not None else "ignored"
    door = GithubDoor(
        state.automations, state.store, state.people.github, state.settings.github.web_url
    )
    if await door.dispatch(event, payload, delivery_id) == "processed":
        outcome = "processed"
    for handler in state.github_handlers:  # the review bot's doors (integrations.github)
        if await handler.dispatch(event, payload, delivery_id) == "processed":
            outcome = "processed"
    return outcome
