"""What the inbound Slack handlers share: the control plane's parts, the Web API client, who
the app is in Slack (learnt once from ``auth.test``), and the outbox helpers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from openinspect.bus import Bus
from openinspect.errors import ConfigError
from openinspect.integrations import links
from openinspect.integrations.slack.delivery import OUTBOX_CHANNEL
from openinspect.sessions.commands import CommandHandler
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.store.slack_threads import POST_KEY_MAX

log = logging.getLogger(__name__)
WHOAMI_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Me:
    """The app's bot in its workspace."""

    team_id: str
    user_id: str
    bot_id: str | None


def bounded_key(key: str, limit: int = POST_KEY_MAX) -> str:
    """``key`` as it is when it fits ``limit`` (a Slack post key's, by default), else a prefix
    and its sha256."""
    return links.bounded_key(key, limit)


@dataclass
class SlackDeps:
    settings: Settings
    store: Store
    bus: Bus
    commands: CommandHandler
    client: AsyncWebClient
    _me: Me | None = None
    _me_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def known(self) -> Me | None:
        """Who the app is, if learnt already (no call)."""
        return self._me

    async def me(self) -> Me:
        """Who the app is (``auth.test``, once); ``ConfigError`` when Slack refuses the token."""
        if self._me is not None:
            return self._me
        async with self._me_lock:
            if self._me is None:
                try:
                    async with asyncio.timeout(WHOAMI_TIMEOUT_S):
                        answer = await self.client.auth_test()
                except SlackApiError as exc:
                    raise ConfigError(
                        f"Slack refused the bot token ({exc.response.get('error', '?')})",
                        hint="Check slack.bot_token",
                    ) from None
                team, user = answer.get("team_id"), answer.get("user_id")
                if not isinstance(team, str) or not isinstance(user, str):
                    raise ConfigError("Slack's auth.test named no team or user")
                bot = answer.get("bot_id")
                self._me = Me(team, user, bot if isinstance(bot, str) else None)
                log.info("slack: the app is %s in team %s", user, team)
        return self._me

    async def kick(self) -> None:
        """Tell the outbound delivery that there is something to post."""
        try:
            await self.bus.publish(OUTBOX_CHANNEL, "kick")
        except Exception as exc:  # the delivery also polls: a lost kick only delays a post
            log.warning("slack: the outbox kick was not published: %r", exc)

    async def post(
        self,
        *,
        key: str,
        kind: str,
        team_id: str,
        channel_id: str,
        thread_ts: str | None,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        slack_user_id: str | None = None,
        session_id: str | None = None,
    ) -> None:
        """Decide a notice (``notice``: in the thread, for all; ``ephemeral``: for
        ``slack_user_id`` only) once per ``key``, then kick the delivery."""
        body: dict[str, Any] = {"text": text}
        if blocks is not None:
            body["blocks"] = blocks
        async with self.store.engine.begin() as conn:
            await self.store.slack_threads.enqueue_post(
                conn,
                key=bounded_key(key),
                kind="ephemeral" if kind == "ephemeral" else "notice",
                team_id=team_id,
                channel_id=channel_id,
                thread_ts=thread_ts,
                body=body,
                slack_user_id=slack_user_id,
                session_id=session_id,
            )
        await self.kick()
