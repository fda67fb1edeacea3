"""A Slack message addressed to the app: a new request, or a reply in a session's thread.

New request (a mention in a channel, any DM message, or a mention in a thread that has no
session): the author is mapped to an openinspect user (``identity``), the repo is routed
(``routing``), and the session is started in this order: ``StartSession`` without a prompt
(idempotent by the message), the thread row (``store.slack_threads.create``), a kick of the
outbound delivery, then the prompt (``SubmitPrompt``, idempotent by the message): so the thread
row exists before any of the prompt's events. When the routing is unsure, the author picks the
repo from buttons (a ``slack_picks`` row keeps the request for an hour).

Reply in a known thread (in a channel only when it mentions the app; in a DM any reply): a
prompt in the thread's session, as the replying user, who must be able to see the session.

The author's own words are their prompt, as they wrote them (the app's mention removed). When a
session starts in an existing thread, the thread's earlier messages go with it as context,
fenced as untrusted data (``automations.untrusted``): other people wrote them.

Failures become ephemeral notices to the author through the outbox, with our own message for
the error (never the request's text).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError

from openinspect.automations.untrusted import render_untrusted
from openinspect.domain.commands import IDEMPOTENCY_KEY_MAX, StartSession, SubmitPrompt
from openinspect.domain.models import User
from openinspect.errors import OpenInspectError
from openinspect.integrations.slack.deps import Me, SlackDeps, bounded_key
from openinspect.integrations.slack.events import MessageEvent
from openinspect.integrations.slack.identity import SlackIdentity
from openinspect.integrations.slack.routing import RepoRouter, Unsure
from openinspect.integrations.slack.text import clean_text, mentions, origin_ref, title_of
from openinspect.store.slack_threads import ChannelType

log = logging.getLogger(__name__)
ALLOWED_SUBTYPES = (None, "file_share", "thread_broadcast")
PICK_TTL_S = 3600
PICK_REPO = "openinspect_pick_repo"
CONTEXT_MESSAGES_MAX = 20
EYES = "eyes"


def channel_type_of(msg: MessageEvent) -> ChannelType:
    """The message's channel type; ``app_mention`` has none, so it is told by the id."""
    if msg.channel_type is not None:
        return msg.channel_type
    if msg.channel.startswith("D"):
        return "im"
    return "group" if msg.channel.startswith("G") else "channel"


def addressed(msg: MessageEvent, me: Me | None) -> bool:
    """Whether the message is one to act on: a person's new message (no bot, no edit, a plain
    subtype), not ours, that mentions the app unless it is in a DM."""
    if msg.bot_id is not None or msg.subtype not in ALLOWED_SUBTYPES or msg.edited is not None:
        return False
    if msg.user is None or (me is not None and msg.user == me.user_id):
        return False
    if channel_type_of(msg) == "im":
        return True
    return msg.type == "app_mention" or me is None or mentions(msg.text, me.user_id)


@dataclass(frozen=True)
class Request:
    """A request to start a session, from a message or a pick."""

    team_id: str
    channel_id: str
    channel_type: ChannelType
    thread_ts: str
    message_ts: str
    slack_user_id: str
    text: str
    context: str | None = None


def error_text(exc: OpenInspectError) -> str:
    return f"I couldn't do that: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")


class MessageHandler:
    def __init__(self, deps: SlackDeps, identity: SlackIdentity, router: RepoRouter) -> None:
        self._deps = deps
        self._identity = identity
        self._router = router

    async def react(self, channel_id: str, ts: str) -> None:
        try:
            await self._deps.client.reactions_add(channel=channel_id, timestamp=ts, name=EYES)
        except SlackApiError as exc:
            error = exc.response.get("error", "?")
            if error != "already_reacted":
                log.info("slack: reactions.add failed (%s)", error)

    async def refuse(self, request: Request, exc: OpenInspectError) -> None:
        await self._deps.post(
            key=f"error:{request.team_id}:{request.channel_id}:{request.message_ts}",
            kind="ephemeral",
            team_id=request.team_id,
            channel_id=request.channel_id,
            thread_ts=request.thread_ts,
            text=error_text(exc),
            slack_user_id=request.slack_user_id,
        )

    async def handle(self, team_id: str, msg: MessageEvent, me: Me) -> str:
        """Act on one addressed message; the inbox status (``done`` / ``ignored``)."""
        if not addressed(msg, me):
            return "ignored"
        assert msg.user is not None
        await self.react(msg.channel, msg.ts)
        in_thread = msg.thread_ts is not None and msg.thread_ts != msg.ts
        request = Request(
            team_id=team_id,
            channel_id=msg.channel,
            channel_type=channel_type_of(msg),
            thread_ts=msg.thread_ts if in_thread and msg.thread_ts else msg.ts,
            message_ts=msg.ts,
            slack_user_id=msg.user,
            text=clean_text(msg.text, me.user_id),
        )
        user = await self._identity.user_for(team_id, msg.user)
        if user is None:
            await self._identity.refuse(
                team_id=team_id,
                slack_user_id=msg.user,
                channel_id=msg.channel,
                thread_ts=request.thread_ts,
                key=f"link:{team_id}:{msg.channel}:{msg.ts}",
            )
            return "done"
        if not request.text:
            await self.refuse(
                request,
                OpenInspectError(
                    "the message has no request in it", hint="Say what to do after the mention"
                ),
            )
            return "done"
        if in_thread:
            thread = await self._deps.store.slack_threads.by_thread(
                team_id, msg.channel, request.thread_ts
            )
            if thread is not None:
                await self._reply(user, thread.session_id, request)
                return "done"
            request = Request(**{**request.__dict__, "context": await self._context(request)})
        await self.route_and_start(user, request)
        return "done"

    async def _reply(self, user: User, session_id: str, request: Request) -> None:
        command = SubmitPrompt(
            session_id=session_id,
            content=request.text,
            client_request_id=bounded_key(
                f"slack:{request.channel_id}:{request.message_ts}", IDEMPOTENCY_KEY_MAX
            ),
        )
        try:
            await self._deps.commands.handle(user, command, origin="slack")
        except OpenInspectError as exc:
            await self.refuse(request, exc)

    async def route_and_start(self, user: User, request: Request) -> None:
        prefs = await self._deps.store.slack_people.get(request.team_id, request.slack_user_id)
        routed = await self._router.route(
            user,
            request.text,
            channel_id=request.channel_id,
            default_repo=prefs.default_repo if prefs is not None else None,
        )
        if isinstance(routed, Unsure):
            await self._ask_pick(request, routed.candidates)
            return
        await self.start(user, request, routed.repo)

    async def start(self, user: User, request: Request, repo: str) -> str | None:
        """Start the session for ``request`` on ``repo`` (see the module docstring); its id,
        or None when it was refused (the author is told)."""
        deps = self._deps
        prefs = await deps.store.slack_people.get(request.team_id, request.slack_user_id)
        key = f"slack:{request.team_id}:{request.channel_id}:{request.message_ts}"
        start = StartSession(
            repo=repo,
            model=prefs.model if prefs is not None else None,
            effort=prefs.effort if prefs is not None else None,
            title=title_of(request.text),
            idempotency_key=bounded_key(key, IDEMPOTENCY_KEY_MAX),
            origin_ref=bounded_key(
                origin_ref(request.team_id, request.channel_id, request.thread_ts)
            ),
        )
        try:
            started = await deps.commands.handle(user, start, origin="slack")
        except OpenInspectError as exc:
            await self.refuse(request, exc)
            return None
        session_id = started.session.id
        async with deps.store.engine.begin() as conn:
            made = await deps.store.slack_threads.create(
                conn,
                session_id=session_id,
                team_id=request.team_id,
                channel_id=request.channel_id,
                thread_ts=request.thread_ts,
                channel_type=request.channel_type,
                slack_user_id=request.slack_user_id,
            )
        if not made:
            mine = await deps.store.slack_threads.by_session(session_id)
            if mine is None or mine.thread_ts != request.thread_ts:
                # Another request in this thread started its session first (on another
                # server): this prompt goes there; the session just made stays empty.
                holder = await deps.store.slack_threads.by_thread(
                    request.team_id, request.channel_id, request.thread_ts
                )
                if holder is not None:
                    log.info(
                        "slack: thread taken by %s; %s stays empty", holder.session_id, session_id
                    )
                    session_id = holder.session_id
        await deps.kick()
        content = request.text
        if request.context:
            content = f"{content}\n\n{request.context}"
        await self._reply(user, session_id, Request(**{**request.__dict__, "text": content}))
        return session_id

    async def _ask_pick(self, request: Request, candidates: list[str]) -> None:
        deps = self._deps
        if not candidates:
            await self.refuse(
                request,
                OpenInspectError(
                    "there is no registered repo you can start a session on",
                    hint="Ask an admin to register one",
                ),
            )
            return
        pick = await deps.store.slack_inbox.create_pick(
            team_id=request.team_id,
            channel_id=request.channel_id,
            thread_ts=request.thread_ts,
            message_ts=request.message_ts,
            channel_type=request.channel_type,
            slack_user_id=request.slack_user_id,
            text=request.text
            if request.context is None
            else f"{request.text}\n\n{request.context}",
            candidates=candidates,
            ttl_s=PICK_TTL_S,
        )
        text = f"<@{request.slack_user_id}> which repo is this about?"
        buttons: list[dict[str, Any]] = [
            {
                "type": "button",
                "action_id": f"{PICK_REPO}:{i}",
                "text": {"type": "plain_text", "text": name[:75]},
                "value": f"{pick.id}|{name}",
            }
            for i, name in enumerate(candidates)
        ]
        await deps.post(
            key=f"pick:{pick.id}",
            kind="notice",
            team_id=request.team_id,
            channel_id=request.channel_id,
            thread_ts=request.thread_ts,
            text=text,
            blocks=[
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "actions", "block_id": "openinspect_pick", "elements": buttons},
            ],
        )

    async def _context(self, request: Request) -> str | None:
        """The thread's earlier messages (at most :data:`CONTEXT_MESSAGES_MAX`), fenced."""
        try:
            answer = await self._deps.client.conversations_replies(
                channel=request.channel_id, ts=request.thread_ts, limit=CONTEXT_MESSAGES_MAX + 1
            )
        except SlackApiError as exc:
            log.info("slack: conversations.replies failed (%s)", exc.response.get("error", "?"))
            return None
        found = answer.get("messages")
        earlier = [
            {"user": m.get("user") or m.get("bot_id"), "text": str(m.get("text", ""))[:4000]}
            for m in (found if isinstance(found, list) else [])
            if isinstance(m, dict) and m.get("ts") != request.message_ts
        ][:CONTEXT_MESSAGES_MAX]
        if not earlier:
            return None
        return render_untrusted(
            earlier,
            source="the Slack thread this request was made in (its earlier messages)",
            received_at=datetime.now(UTC),
        )
