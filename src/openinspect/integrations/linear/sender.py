"""The outbox's sender for Linear (``integrations.outbox.Sender``, source ``linear``): posts
the rows ``activities`` describes with the workspace's token (``tokens``: refreshed once when
Linear refuses it).

- ``send``: an activity is created with the id its key stands for; Linear's "already exists"
  for that id means an earlier attempt made it (its answer was lost): the row is adopted. Links
  are set with ``agentSessionUpdate`` (it replaces them, so sending twice is harmless).
- ``find`` (before a retry): the activity the row's id names, if Linear has it.
- Rate limits, outages and timeouts → ``RetryLater`` (the source pauses); a refusal that will
  not change (an agent session that is gone, content Linear refuses, a revoked install) →
  ``PermanentFailure`` with a stable code.
"""

from __future__ import annotations

import logging
from typing import Any

from openinspect.errors import LinearAuthFailed, LinearError, LinearRateLimited, LinearUnavailable
from openinspect.integrations.linear.activities import SOURCE, activity_id, request_for
from openinspect.integrations.linear.client import LinearClient
from openinspect.integrations.linear.tokens import LinearTokens
from openinspect.integrations.outbox import PermanentFailure, RetryLater
from openinspect.store.outbox import OutboxRow

log = logging.getLogger(__name__)
OUTAGE_PAUSE_S = 5.0


class LinearSender:
    source = SOURCE

    def __init__(self, client: LinearClient, tokens: LinearTokens) -> None:
        self._client = client
        self._tokens = tokens

    async def send(self, row: OutboxRow) -> dict[str, Any]:
        org_id, agent_session_id = _target(row)
        body = row.body
        try:
            if body.get("op") == "links":
                links = body.get("externalUrls") or []
                await self._tokens.call(
                    org_id,
                    lambda token: self._client.update_session(
                        token, agent_session_id, {"externalUrls": links}
                    ),
                )
                return {"links": len(links)}
            request = request_for(row.key, agent_session_id, body)
            try:
                made = await self._tokens.call(
                    org_id, lambda token: self._client.create_activity(token, request)
                )
            except LinearError as exc:
                if exc.details.get("reason") != "conflict":
                    raise
                log.info("linear: activity %s was posted before: adopted", row.key)
                made = request["id"]
            return {"id": made}
        except LinearError as exc:
            raise _mapped(exc) from None

    async def find(self, row: OutboxRow) -> dict[str, Any] | None:
        if row.body.get("op") != "activity":
            return None
        org_id, _ = _target(row)
        wanted = activity_id(row.key)
        try:
            found = await self._tokens.call(
                org_id, lambda token: self._client.activity_exists(token, wanted)
            )
        except LinearError as exc:
            raise _mapped(exc) from None
        return {"id": wanted} if found else None


def _target(row: OutboxRow) -> tuple[str, str]:
    org_id, agent_session_id = row.target.get("org_id"), row.target.get("agent_session_id")
    if not isinstance(org_id, str) or not isinstance(agent_session_id, str):
        raise PermanentFailure("linear_target_invalid")
    return org_id, agent_session_id


def _mapped(exc: LinearError) -> Exception:
    if isinstance(exc, LinearRateLimited):
        return RetryLater(exc.retry_after_s or OUTAGE_PAUSE_S, exc.code)
    if isinstance(exc, LinearUnavailable):
        return RetryLater(OUTAGE_PAUSE_S, exc.code)
    if isinstance(exc, LinearAuthFailed):
        return PermanentFailure(exc.code)
    if exc.linear_code is None:  # an answer we could not read: retried with a back-off
        return exc
    return PermanentFailure(f"linear_{exc.linear_code.lower()}"[:64])
