"""Who a Slack user is here: the openinspect user they act as.

In order: a linked ``slack_users`` row; else, with ``slack.match_email``, the one openinspect
user whose email equals the Slack profile's (Slack verifies the emails it shows; two users with
the same email match nobody), which links them (``linked_by="email"``); else, with
``slack.allow_unlinked``, the app's own user (``slack.app_user``, made on first use as a
member); else nobody: the caller refuses the request with :meth:`SlackIdentity.refuse`, an
ephemeral message (through the outbox) with a one-time link to ``/slack/link?code=…``, which a
signed-in person opens and confirms with a click (``POST /api/slack/link``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from openinspect.domain.models import User
from openinspect.integrations.links import web_base
from openinspect.integrations.people import app_user, only_user_with_email
from openinspect.settings import Settings
from openinspect.store import Store

log = logging.getLogger(__name__)
APP_USER_EMAIL_DOMAIN = "slack.invalid"
"""The app user's email is ``<app_user>@slack.invalid``: no Slack profile can match it."""
NAME_MAX = 80
LINK_ACTION = "openinspect_link"
Post = Callable[..., Awaitable[None]]
"""``SlackDeps.post``: decide a post through the outbox, then kick the delivery."""


async def link_button(
    settings: Settings, store: Store, team_id: str, slack_user_id: str
) -> dict[str, Any]:
    """A "Link my account" button to a new one-time link for the Slack user."""
    code = await store.slack_people.mint_code(
        team_id, slack_user_id, settings.slack.link_code_ttl_s
    )
    return {
        "type": "button",
        "action_id": LINK_ACTION,
        "text": {"type": "plain_text", "text": "Link my account"},
        "url": f"{web_base(settings)}/slack/link?code={code}",
        "style": "primary",
    }


class SlackIdentity:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        client: AsyncWebClient,
        post: Post,
    ) -> None:
        self._settings = settings
        self._store = store
        self._client = client
        self._post = post

    async def user_for(self, team_id: str, slack_user_id: str) -> User | None:
        """The openinspect user ``slack_user_id`` acts as, or None (refuse them)."""
        store = self._store
        found = await store.slack_people.get(team_id, slack_user_id)
        if found is not None and found.user_id is not None:
            user = await store.users.get(found.user_id)
            if user is not None:
                return user
        if self._settings.slack.match_email:
            user = await self._by_email(team_id, slack_user_id)
            if user is not None:
                return user
        if self._settings.slack.allow_unlinked:
            return await self.app_user()
        return None

    async def _by_email(self, team_id: str, slack_user_id: str) -> User | None:
        try:
            answer = await self._client.users_info(user=slack_user_id)
        except SlackApiError as exc:
            log.info("slack: users.info failed (%s)", exc.response.get("error", "?"))
            return None
        found = answer.get("user")
        if not isinstance(found, dict) or found.get("is_bot") or found.get("deleted"):
            return None
        profile = found.get("profile")
        email = profile.get("email") if isinstance(profile, dict) else None
        user = await only_user_with_email(self._store, email)
        if user is None or not isinstance(email, str):
            return None
        await self._store.slack_people.link(
            team_id, slack_user_id, user.id, linked_by="email", email=email
        )
        log.info("slack: %s/%s linked to %s by email", team_id, slack_user_id, user.id)
        return user

    async def app_user(self) -> User:
        """The app's own user (made on first use, as a member)."""
        return await app_user(self._store, self._settings.slack.app_user, APP_USER_EMAIL_DOMAIN)

    async def refuse(
        self, *, team_id: str, slack_user_id: str, channel_id: str, thread_ts: str | None, key: str
    ) -> None:
        """Tell the Slack user (only them) to link their account first, with a one-time link."""
        button = await link_button(self._settings, self._store, team_id, slack_user_id)
        text = (
            "I don't know who you are on openinspect yet. Link your Slack account to your "
            "openinspect account first, then ask again."
        )
        await self._post(
            key=key,
            kind="ephemeral",
            team_id=team_id,
            channel_id=channel_id,
            thread_ts=thread_ts,
            text=text,
            blocks=[
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "actions", "elements": [button]},
            ],
            slack_user_id=slack_user_id,
        )


@dataclass(frozen=True)
class LinkInfo:
    """What a link code would link, for the person about to confirm it."""

    team_id: str
    slack_user_id: str
    slack_name: str | None
    expires_at: datetime


async def describe_code(store: Store, client: AsyncWebClient, code: str) -> LinkInfo:
    """The Slack user a usable link code names, with their Slack name when Slack tells it;
    raises ``SlackLinkNotFound`` (or its 410 subclasses)."""
    found = await store.slack_people.peek_code(code)
    name = None
    try:
        answer = await client.users_info(user=found.slack_user_id)
        who = answer.get("user")
        if isinstance(who, dict):
            raw = who.get("profile")
            profile: dict[str, Any] = raw if isinstance(raw, dict) else {}
            for candidate in (profile.get("display_name"), who.get("name"), who.get("real_name")):
                if isinstance(candidate, str) and candidate.strip():
                    name = candidate.strip()[:NAME_MAX]
                    break
    except SlackApiError as exc:
        log.info("slack: users.info failed (%s)", exc.response.get("error", "?"))
    return LinkInfo(found.team_id, found.slack_user_id, name, found.expires_at)


async def redeem_code(store: Store, code: str, user: User) -> LinkInfo:
    """Link the code's Slack user to ``user`` (the code is used once)."""
    found = await store.slack_people.redeem_code(code, user.id)
    log.info(
        "slack: %s/%s linked to %s by a link code", found.team_id, found.slack_user_id, user.id
    )
    return LinkInfo(found.team_id, found.slack_user_id, None, found.expires_at)
