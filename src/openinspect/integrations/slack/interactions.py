"""Buttons and selects (``block_actions``), from ``POST /slack/interactions`` or a Socket Mode
``interactive`` envelope.

Every action runs as the clicking Slack user's openinspect user (an unlinked one is sent the
link instructions) and through ``commands.handle``, which authorises it: a button on someone
else's session is refused like any other command. Errors become ephemeral notices to the
clicking user through the outbox (none for the App Home, which has no channel: logged).

- ``openinspect_stop`` (value: session id) → ``Stop``.
- ``openinspect_create_pr`` (value: session id) → ``OpenPullRequest`` titled as the session.
- ``openinspect_open`` and the link button are URL buttons: Slack reports them, we ignore them.
- ``openinspect_pick_repo[:n]`` (value: ``<pick id>|<repo>``) → start the waiting request on
  that repo; only its author may pick, once, within the hour, one of the offered repos.
- ``openinspect_home_repo`` / ``_model`` / ``_effort`` (selects) → store the preference (one of
  the options offered now) and publish the Home tab again.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from openinspect.domain.commands import ID_MAX, OpenPullRequest, Stop
from openinspect.domain.events import utcnow
from openinspect.domain.models import User
from openinspect.errors import (
    SESSION_NOT_FOUND_HINT,
    InvalidInput,
    OpenInspectError,
    SessionNotFound,
)
from openinspect.integrations.links import session_url
from openinspect.integrations.slack.deps import Me, SlackDeps
from openinspect.integrations.slack.events import Action, BlockActions
from openinspect.integrations.slack.home import HOME_ACTIONS, SlackHome
from openinspect.integrations.slack.identity import SlackIdentity
from openinspect.integrations.slack.messages import PICK_REPO, MessageHandler, Request, error_text
from openinspect.integrations.slack.render import CREATE_PR_ACTION as CREATE_PR
from openinspect.integrations.slack.render import STOP_ACTION as STOP

log = logging.getLogger(__name__)
PR_TITLE_MAX = 256


def is_pick(action_id: str) -> bool:
    return action_id == PICK_REPO or action_id.startswith(PICK_REPO + ":")


def handled(action: Action) -> bool:
    """Whether the action is one we act on (the others are acknowledged and dropped)."""
    return (
        action.action_id in (STOP, CREATE_PR)
        or action.action_id in HOME_ACTIONS
        or is_pick(action.action_id)
    )


class Interactions:
    def __init__(
        self,
        deps: SlackDeps,
        identity: SlackIdentity,
        messages: MessageHandler,
        home: SlackHome,
    ) -> None:
        self._deps = deps
        self._identity = identity
        self._messages = messages
        self._home = home

    async def handle(self, payload: BlockActions, me: Me) -> str:
        team = payload.team_id()
        if team != me.team_id:
            return "ignored"
        actions = [a for a in payload.actions if handled(a)]
        if not actions:
            return "ignored"
        slack_user = payload.user.id
        user = await self._identity.user_for(team, slack_user)
        channel = payload.channel_id()
        if user is None:
            if channel is not None:
                await self._identity.refuse(
                    team_id=team,
                    slack_user_id=slack_user,
                    channel_id=channel,
                    thread_ts=payload.thread_ts(),
                    key=f"link:{team}:{channel}:{payload.trigger_id or actions[0].action_ts}",
                )
            else:
                await self._home.publish(team, slack_user)
            return "done"
        for action in actions:
            try:
                await self._act(user, payload, action, me)
            except (OpenInspectError, ValidationError) as exc:
                error = (
                    exc
                    if isinstance(exc, OpenInspectError)
                    else InvalidInput("the button's value is not one of ours")
                )
                await self._tell(payload, action, error)
        return "done"

    async def _tell(self, payload: BlockActions, action: Action, exc: OpenInspectError) -> None:
        channel = payload.channel_id()
        team = payload.team_id()
        if channel is None or team is None:
            log.info("slack: a Home action was refused (%s)", exc.code)
            return
        await self._deps.post(
            key=f"error:{team}:action:{payload.trigger_id or action.action_ts}:{action.action_id}",
            kind="ephemeral",
            team_id=team,
            channel_id=channel,
            thread_ts=payload.thread_ts(),
            text=error_text(exc),
            slack_user_id=payload.user.id,
        )

    async def _act(self, user: User, payload: BlockActions, action: Action, me: Me) -> None:
        deps = self._deps
        value = action.chosen or ""
        if action.action_id == STOP:
            await deps.commands.handle(user, Stop(session_id=value), origin="slack")
        elif action.action_id == CREATE_PR:
            await self._create_pr(user, value)
        elif is_pick(action.action_id):
            await self._pick(user, payload, value, me)
        else:
            await self._preference(user, payload, action.action_id, value)

    async def _create_pr(self, user: User, session_id: str) -> None:
        deps = self._deps
        if not session_id or len(session_id) > ID_MAX:
            raise SessionNotFound("No such session", hint=SESSION_NOT_FOUND_HINT)
        session = await deps.store.sessions.get(session_id)  # handle authorises the user
        if session is None:
            raise SessionNotFound("No such session", hint=SESSION_NOT_FOUND_HINT)
        body = f"Opened from Slack. Session: {session_url(deps.settings, session.id)}"
        await deps.commands.handle(
            user,
            OpenPullRequest(session_id=session.id, title=session.title[:PR_TITLE_MAX], body=body),
            origin="slack",
        )

    async def _pick(self, user: User, payload: BlockActions, value: str, me: Me) -> None:
        inbox = self._deps.store.slack_inbox
        pick_id, _, repo = value.partition("|")
        pick = await inbox.pick(pick_id) if pick_id else None
        if pick is None or pick.team_id != me.team_id:
            raise InvalidInput("that choice is not one the app offered")
        if pick.slack_user_id != payload.user.id:
            raise InvalidInput(
                "only the person who asked can choose the repo",
                hint="Ask the app yourself to start your own session",
            )
        if repo not in pick.candidates:
            raise InvalidInput("that repo was not one of the choices")
        if pick.resolved_at is not None:
            raise InvalidInput("the repo was chosen already")
        if pick.expires_at <= utcnow():
            raise InvalidInput("this choice has expired", hint="Ask the app again")
        if not await inbox.use_pick(pick.id):
            raise InvalidInput("the repo was chosen already")
        request = Request(
            team_id=pick.team_id,
            channel_id=pick.channel_id,
            channel_type=pick.channel_type,  # type: ignore[arg-type]
            thread_ts=pick.thread_ts,
            message_ts=pick.message_ts,
            slack_user_id=pick.slack_user_id,
            text=pick.text,
        )
        session_id = await self._messages.start(user, request, repo)
        if session_id is not None:
            await inbox.set_pick_session(pick.id, session_id)

    async def _preference(
        self, user: User, payload: BlockActions, action_id: str, value: str
    ) -> None:
        team = payload.team_id()
        assert team is not None
        people = self._deps.store.slack_people
        prefs = await people.get(team, payload.user.id)
        if value not in await self._home.options(user, prefs, action_id):
            raise InvalidInput("that choice is not offered")
        await people.set_preference(team, payload.user.id, HOME_ACTIONS[action_id], value)
        await self._home.publish(team, payload.user.id)
