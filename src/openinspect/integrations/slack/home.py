"""The App Home tab: a Slack user's preferences and recent sessions.

Published (``views.publish``) when the user opens the tab and again after each change. The
preferences are three selects: the default repo (registered repos the user may use), the model
(the models this server can run) and the reasoning effort (the model's efforts); choosing one
stores it (``store.slack_people``) — a value that is not one of the options offered now is
refused — and a new session from Slack uses them. A user with no openinspect account gets a
link button instead (``identity.SlackIdentity``).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from openinspect.agent.models import ModelRegistry
from openinspect.domain.models import User
from openinspect.integrations.links import session_url
from openinspect.integrations.slack.identity import SlackIdentity, link_button
from openinspect.integrations.slack.render import escape, escape_cut
from openinspect.integrations.slack.routing import RepoRouter
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.store.slack_people import Preference, SlackUser

log = logging.getLogger(__name__)
HOME_REPO = "openinspect_home_repo"
HOME_MODEL = "openinspect_home_model"
HOME_EFFORT = "openinspect_home_effort"
HOME_ACTIONS: dict[str, Preference] = {
    HOME_REPO: "default_repo",
    HOME_MODEL: "model",
    HOME_EFFORT: "effort",
}
RECENT_SESSIONS = 10
OPTIONS_MAX = 100
OPTION_VALUE_MAX = 150
OPTION_TEXT_MAX = 75


def _option(value: str, text: str | None = None) -> dict[str, Any]:
    label = (text or value)[:OPTION_TEXT_MAX]
    return {"text": {"type": "plain_text", "text": label}, "value": value}


def _select(
    label: str, action_id: str, values: list[str], chosen: str | None, placeholder: str
) -> dict[str, Any]:
    values = [v for v in values if len(v) <= OPTION_VALUE_MAX][:OPTIONS_MAX]
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": f"*{label}*"}}
    if not values:
        block["text"]["text"] += "\n_(nothing to choose from)_"
        return block
    accessory: dict[str, Any] = {
        "type": "static_select",
        "action_id": action_id,
        "placeholder": {"type": "plain_text", "text": placeholder},
        "options": [_option(v) for v in values],
    }
    if chosen in values:
        accessory["initial_option"] = _option(chosen)
    block["accessory"] = accessory
    return block


class SlackHome:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        client: AsyncWebClient,
        models: ModelRegistry,
        router: RepoRouter,
        identity: SlackIdentity,
    ) -> None:
        self._settings = settings
        self._store = store
        self._client = client
        self._models = models
        self._router = router
        self._identity = identity

    def models(self) -> list[str]:
        """The models a user may choose: the default first, then every one that runs here."""
        default = self._models.default_model()
        offered = [m for m in self._models.available_models() if not m.endswith(":*")]
        return [default, *[m for m in offered if m != default]]

    def efforts(self, model_id: str | None) -> list[str]:
        try:
            return list(self._models.info(model_id or self._models.default_model()).efforts)
        except Exception:  # a model id that no longer parses: no efforts to offer
            return []

    async def options(self, user: User, prefs: SlackUser | None, action_id: str) -> list[str]:
        """What the select ``action_id`` offers ``user`` now."""
        if action_id == HOME_REPO:
            return [r.name for r in await self._router.usable(user)]
        if action_id == HOME_MODEL:
            return self.models()
        return self.efforts(prefs.model if prefs is not None else None)

    async def publish(self, team_id: str, slack_user_id: str) -> None:
        user = await self._identity.user_for(team_id, slack_user_id)
        if user is None:
            blocks = await self._unlinked(team_id, slack_user_id)
        else:
            prefs = await self._store.slack_people.get(team_id, slack_user_id)
            blocks = await self._blocks(user, prefs)
        try:
            await self._client.views_publish(
                user_id=slack_user_id, view={"type": "home", "blocks": blocks}
            )
        except SlackApiError as exc:
            log.warning("slack: views.publish failed (%s)", exc.response.get("error", "?"))

    async def _unlinked(self, team_id: str, slack_user_id: str) -> list[dict[str, Any]]:
        button = await link_button(self._settings, self._store, team_id, slack_user_id)
        text = "Link your Slack account to your openinspect account to start sessions here."
        return [
            {"type": "header", "text": {"type": "plain_text", "text": "openinspect"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "actions", "elements": [button]},
        ]

    async def _blocks(self, user: User, prefs: SlackUser | None) -> list[dict[str, Any]]:
        repos = [r.name for r in await self._router.usable(user)]
        model = prefs.model if prefs is not None else None
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": "openinspect"}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"Signed in as {escape(user.name)}"}],
            },
            _select(
                "Default repo",
                HOME_REPO,
                repos,
                prefs.default_repo if prefs is not None else None,
                "Choose a repo",
            ),
            _select("Model", HOME_MODEL, self.models(), model, "The server's default"),
            _select(
                "Reasoning effort",
                HOME_EFFORT,
                self.efforts(model),
                prefs.effort if prefs is not None else None,
                "The model's default",
            ),
            {"type": "divider"},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Recent sessions*"}},
        ]
        recent = await self._store.sessions.list(participant_id=user.id, limit=RECENT_SESSIONS)
        lines = [
            f"• <{session_url(self._settings, s.id)}|{escape_cut(s.title, 150)}> ({s.status})"
            for s in recent
        ]
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "\n".join(lines) or "_No sessions yet._"},
            }
        )
        return blocks
