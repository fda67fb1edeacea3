"""Slack over Socket Mode: the app dials Slack (``apps.connections.open`` with the app token,
then a WebSocket) instead of Slack posting to a public URL. slack_sdk's aiohttp client keeps the
connection (and reconnects when Slack asks it to); each envelope goes through the same
``accept_event`` / ``accept_interaction`` as an HTTP delivery, and is acknowledged (its
``envelope_id`` sent back) only after the inbox commit, so an envelope lost to a crash before
that is sent again by Slack. Envelopes are authenticated by the connection itself (no
signature); their payloads are validated and capped like HTTP bodies."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from pydantic import ValidationError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from openinspect.errors import ConfigError
from openinspect.integrations.slack.events import BlockActions, EventCallback
from openinspect.integrations.slack.inbound import SlackInbound

log = logging.getLogger(__name__)


class SocketMode:
    """One Socket Mode connection for ``inbound``; ``run`` holds it until cancelled."""

    def __init__(self, inbound: SlackInbound) -> None:
        settings = inbound.deps.settings.slack
        if settings.app_token is None:
            raise ConfigError(
                "Socket Mode needs an app-level token",
                hint="Set OPENINSPECT_SLACK__APP_TOKEN (xapp-…, scope connections:write)",
            )
        self._inbound = inbound
        self._max_bytes = settings.event_max_bytes
        self._client = SocketModeClient(
            app_token=settings.app_token.get_secret_value(),
            web_client=AsyncWebClient(
                base_url=settings.resolved_api_url,
                timeout=max(1, int(settings.request_timeout_s)),
            ),
        )
        self._client.socket_mode_request_listeners.append(self._on_request)

    async def _on_request(self, client: Any, request: SocketModeRequest) -> None:
        try:
            await self.accept(request)
        except Exception as exc:  # not acknowledged: Slack sends the envelope again
            log.warning("slack: a Socket Mode envelope was not accepted (%s)", type(exc).__name__)
            return
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    async def accept(self, request: SocketModeRequest) -> None:
        """Store the envelope's delivery in the inbox (or drop it: too big, malformed, not
        ours); raises only when the store fails."""
        payload = request.payload
        if len(json.dumps(payload)) > self._max_bytes:
            log.info("slack: a Socket Mode envelope over %d bytes was dropped", self._max_bytes)
            return
        try:
            if request.type == "events_api" and payload.get("type") == "event_callback":
                await self._inbound.accept_event(EventCallback.model_validate(payload), payload)
            elif request.type == "interactive" and payload.get("type") == "block_actions":
                await self._inbound.accept_interaction(
                    BlockActions.model_validate(payload), payload
                )
        except ValidationError:
            log.info("slack: a malformed Socket Mode %s envelope was dropped", request.type)

    async def run(self) -> None:
        """Connect and stay connected until cancelled."""
        try:
            await self._client.connect()  # type: ignore[no-untyped-call]
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the connection and the client's HTTP session."""
        await self._client.close()  # type: ignore[no-untyped-call]
