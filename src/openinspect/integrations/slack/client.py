"""The Slack Web API client the product uses: ``slack_sdk``'s ``AsyncWebClient``, pointed at
``slack.api_url`` (Slack, or a local fake) with the bot token. The token lives here, in the
control plane, and nowhere else."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from openinspect.errors import ConfigError
from openinspect.settings import SlackSettings


def web_client(settings: SlackSettings) -> AsyncWebClient:
    """A client for the bot token; ``ConfigError`` when Slack is not configured."""
    if settings.bot_token is None:
        raise ConfigError(
            "Slack is not configured", hint="Set slack.bot_token (OPENINSPECT_SLACK__BOT_TOKEN)"
        )
    return AsyncWebClient(
        token=settings.bot_token.get_secret_value(),
        base_url=settings.resolved_api_url,
        timeout=max(1, int(settings.request_timeout_s)),
    )
