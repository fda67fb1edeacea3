"""What the agent does with an agent session event, once it is stored (``inbound``).

**Who.** The Linear person (the follow-up's author, else the session's creator) is the
openinspect user with the same email, read with ``user(id)``, when ``linear.match_email`` is on
and exactly one user has it; else the agent's own user (``linear.app_user``, made on first use
as a member).

**created.** The repo is routed (``routing``); when it is unclear the agent asks with an
``elicitation`` (``signal: "select"``, the candidate repos as options) and the agent session
waits (``awaiting_repo``) for the person's next prompt to name it. Then, in this order:
``StartSession`` (origin ``linear``, ``origin_ref`` ``linear:<issue identifier>``, idempotency
key ``linear:<agent session id>``), the agent session tied to it (``store.linear.link``), its
external links (the web view), then ``SubmitPrompt`` with the issue and ``promptContext``
fenced as untrusted data (``automations.untrusted``: other people wrote them), and the issue
moved to its team's first started state when it is not started yet. Each step is idempotent, so
a delivery handled again after a crash ends in one session and one prompt.

**prompted.** A follow-up is the session's next prompt, as the person who wrote it (who must
be able to see the session). While the repo is being asked for, it is the answer. With the
``stop`` signal, the queued prompts are cancelled and the running one stopped; the final
``response`` says so ("Stopped as asked.": the projection posts it when the stopped prompt
ends, this handler when nothing was running).

Failures are posted as an ``error`` activity with our words and the error's code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openinspect.automations.untrusted import render_untrusted
from openinspect.bus import Bus
from openinspect.domain.commands import (
    IDEMPOTENCY_KEY_MAX,
    TITLE_MAX,
    CancelPrompt,
    StartSession,
    Stop,
    SubmitPrompt,
)
from openinspect.domain.models import ORIGIN_REF_MAX_CHARS, User
from openinspect.errors import LinearError, OpenInspectError
from openinspect.integrations.linear import activities
from openinspect.integrations.linear.client import LinearClient
from openinspect.integrations.linear.events import AgentSessionEvent
from openinspect.integrations.linear.outbound import STOPPED, links
from openinspect.integrations.linear.routing import LinearRouter
from openinspect.integrations.linear.tokens import LinearTokens
from openinspect.integrations.links import bounded_key
from openinspect.integrations.outbox import wake
from openinspect.integrations.people import app_user, only_user_with_email
from openinspect.integrations.routing import Unsure, repo_slug
from openinspect.sessions.commands import CommandHandler
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.store.inbox import InboxItem
from openinspect.store.linear import LinearSession

log = logging.getLogger(__name__)
APP_USER_EMAIL_DOMAIN = "linear.invalid"
"""The agent's own user is ``<app_user>@linear.invalid``: no Linear profile can match it."""
ASKS_MAX = 3
"""How many times the agent asks which repo before it gives up."""
ASK = "Which repository is this about? Pick one below, or reply with its name."
CLIENT_REQUEST_ID_MAX = 128
STARTED_TYPES = ("started", "completed", "canceled")
"""Issue states the agent leaves alone (only a backlog, unstarted or triage issue moves)."""


def thought_for(event: AgentSessionEvent) -> str:
    """The first thought, decided with the delivery (Linear wants one within 10 s)."""
    issue = event.agent_session.issue
    if issue is not None and issue.identifier:
        return f"On it — reading {issue.identifier}"
    return "On it — reading the request"


def prompt_for(event: AgentSessionEvent, received_at: datetime) -> str:
    """The first prompt: our instruction, then everything Linear sent, fenced."""
    issue = event.agent_session.issue
    name = issue.identifier if issue is not None and issue.identifier else "an issue"
    payload: dict[str, Any] = {}
    if issue is not None:
        payload["issue"] = issue.model_dump(mode="json", exclude_none=True)
    comment = event.agent_session.comment
    if comment is not None and comment.body:
        payload["comment"] = comment.body
    if event.prompt_context:
        payload["promptContext"] = event.prompt_context
    ask = (
        f"You were asked on Linear to work on {name}"
        + (f": {issue.title}" if issue is not None and issue.title else "")
        + ". Do what the issue and its thread below ask in this repository; when you have "
        "changes, commit them and open a pull request."
    )
    context = render_untrusted(
        payload, source=f"Linear ({name} and its thread)", received_at=received_at
    )
    return f"{ask}\n\n{context}"


@dataclass
class LinearHandlers:
    settings: Settings
    store: Store
    bus: Bus
    commands: CommandHandler
    client: LinearClient
    tokens: LinearTokens
    router: LinearRouter

    # --- who ---

    async def who(self, org_id: str, person_id: str | None) -> User:
        settings = self.settings.linear
        if settings.match_email and person_id:
            try:
                found = await self.tokens.call(
                    org_id, lambda token: self.client.user(token, person_id)
                )
            except LinearError as exc:
                log.info("linear: user(%s) failed (%s)", person_id, exc.code)
                found = {}
            email = found.get("email")
            user = await only_user_with_email(self.store, email if isinstance(email, str) else None)
            if user is not None:
                return user
        return await app_user(self.store, settings.app_user, APP_USER_EMAIL_DOMAIN)

    # --- posting ---

    async def _post(
        self, row: LinearSession, key: str, content: dict[str, Any], **extra: Any
    ) -> None:
        async with self.store.engine.begin() as conn:
            await activities.post_activity(
                self.store,
                conn,
                key=key,
                org_id=row.org_id,
                agent_session_id=row.agent_session_id,
                content=content,
                session_id=row.session_id,
                **extra,
            )
        await wake(self.bus)

    async def _refuse(
        self, row: LinearSession, key: str, exc: OpenInspectError, *, end: bool = False
    ) -> None:
        """Say why in an ``error`` activity; with ``end``, the agent session is over."""
        text = f"I couldn't do that: {exc.message} (error code: {exc.code})"
        if exc.hint:
            text += f". {exc.hint}"
        await self._post(row, key, activities.message("error", text))
        if end:
            await self.store.linear.set_status(row.agent_session_id, "ended")

    # --- created ---

    async def created(self, event: AgentSessionEvent, item: InboxItem) -> str:
        row = await self.store.linear.session(event.agent_session.id)
        if row is None or row.org_id != event.organization_id:
            return "ignored"
        user = await self.who(row.org_id, event.person_id)
        if row.session_id is None:
            comment = event.agent_session.comment
            routed = await self.router.route(
                user, event.agent_session.issue, comment.body if comment is not None else ""
            )
            if isinstance(routed, Unsure):
                await self._ask(row, routed.candidates, item.id, 1)
                return "done"
            repo = routed.repo
        else:
            repo = ""
        await self.start(user, row, event, repo, item)
        return "done"

    async def start(
        self,
        user: User,
        row: LinearSession,
        event: AgentSessionEvent,
        repo: str,
        item: InboxItem,
    ) -> None:
        """Start (or, after a crash, finish starting) the session for a ``created`` event."""
        session_id = row.session_id
        issue = event.agent_session.issue
        if session_id is None:
            title = f"{issue.identifier}: {issue.title}" if issue is not None else "Linear request"
            ref = f"linear:{issue.identifier}" if issue and issue.identifier else None
            start = StartSession(
                repo=repo,
                title=title[:TITLE_MAX],
                idempotency_key=bounded_key(f"linear:{row.agent_session_id}", IDEMPOTENCY_KEY_MAX),
                origin_ref=bounded_key(
                    ref or f"linear:{row.agent_session_id}", ORIGIN_REF_MAX_CHARS
                ),
            )
            try:
                started = await self.commands.handle(user, start, origin="linear")
            except OpenInspectError as exc:
                await self._refuse(row, f"error:{row.agent_session_id}:{item.id}", exc, end=True)
                return
            session_id = started.session.id
            if not await self.store.linear.link(row.agent_session_id, session_id):
                log.warning("linear: %s is tied to another session", row.agent_session_id)
                return
        async with self.store.engine.begin() as conn:
            await activities.set_links(
                self.store,
                conn,
                key=f"urls:{row.agent_session_id}",
                org_id=row.org_id,
                agent_session_id=row.agent_session_id,
                links=links(self.settings, session_id),
                session_id=session_id,
            )
        await wake(self.bus)
        prompt = SubmitPrompt(
            session_id=session_id,
            content=prompt_for(event, item.received_at),
            client_request_id=bounded_key(
                f"linear:{row.agent_session_id}:created", CLIENT_REQUEST_ID_MAX
            ),
        )
        linked = await self.store.linear.session(row.agent_session_id) or row
        try:
            await self.commands.handle(user, prompt, origin="linear")
        except OpenInspectError as exc:
            await self._refuse(linked, f"error:{row.agent_session_id}:{item.id}", exc)
            return
        if issue is not None:
            await self._move_to_started(row.org_id, issue.id)

    async def _ask(
        self, row: LinearSession, candidates: list[str], inbox_id: str, asked: int
    ) -> None:
        if not candidates:
            await self._refuse(
                row,
                f"error:{row.agent_session_id}:no-repo",
                OpenInspectError(
                    "there is no registered repo you can start a session on",
                    hint="Ask an admin of openinspect to register one",
                ),
                end=True,
            )
            return
        repos = {r.name: r for r in await self.store.repos.list()}
        options = []
        for name in candidates:
            repo = repos.get(name)
            slug = repo_slug(repo, self.router.web_url) if repo is not None else None
            value = repo.url if repo is not None and slug is not None else name
            options.append({"label": name, "value": value})
        await self.store.linear.await_repo(
            row.agent_session_id, {"inbox_id": inbox_id, "asked": asked}
        )
        await self._post(
            row,
            f"elicit:{row.agent_session_id}:{asked}",
            activities.message("elicitation", ASK),
            signal="select",
            signal_metadata={"options": options},
        )

    async def _move_to_started(self, org_id: str, issue_id: str) -> None:
        """Move an issue that is not started to its team's first started state (best effort)."""
        try:
            found = await self.tokens.call(org_id, lambda t: self.client.issue(t, issue_id))
            state_type = (found.get("state") or {}).get("type")
            team_id = (found.get("team") or {}).get("id")
            if state_type in STARTED_TYPES or not isinstance(team_id, str):
                return
            states = await self.tokens.call(
                org_id, lambda t: self.client.started_states(t, team_id)
            )
            if not states:
                return
            first = min(states, key=lambda s: float(s.get("position") or 0))
            await self.tokens.call(
                org_id,
                lambda t: self.client.update_issue(t, issue_id, {"stateId": str(first["id"])}),
            )
        except (LinearError, KeyError, TypeError, ValueError) as exc:
            log.info("linear: the issue was not moved to a started state (%s)", exc)

    # --- prompted ---

    async def prompted(self, event: AgentSessionEvent, item: InboxItem) -> str:
        row = await self.store.linear.session(event.agent_session.id)
        if row is None or row.org_id != event.organization_id:
            return "ignored"
        marker = (event.agent_activity.id if event.agent_activity else None) or item.id
        if event.stop:
            await self._stop(row, event, marker)
            return "done"
        body = event.prompt_body
        if not body:
            return "ignored"
        user = await self.who(row.org_id, event.person_id)
        if row.session_id is None:
            if row.status == "awaiting_repo":
                await self._answer(user, row, body, item)
                return "done"
            return "ignored"
        prompt = SubmitPrompt(
            session_id=row.session_id,
            content=body,
            client_request_id=bounded_key(f"linear:{marker}", CLIENT_REQUEST_ID_MAX),
        )
        try:
            await self.commands.handle(user, prompt, origin="linear")
        except OpenInspectError as exc:
            await self._refuse(row, f"error:{row.agent_session_id}:{marker}", exc)
            return "done"
        if row.status != "active":
            await self.store.linear.set_status(row.agent_session_id, "active")
        return "done"

    async def _answer(self, user: User, row: LinearSession, reply: str, item: InboxItem) -> None:
        """The person's reply to "which repository?": start with it, or ask again."""
        pending = row.state.get("pending") or {}
        asked = int(pending.get("asked") or 1)
        created = await self.store.inbox.get(str(pending.get("inbox_id") or ""))
        if created is None:
            return
        event = AgentSessionEvent.model_validate(created.payload)
        repo = await self.router.answer(user, reply)
        if repo is None:
            if asked >= ASKS_MAX:
                await self._refuse(
                    row,
                    f"error:{row.agent_session_id}:unrouted",
                    OpenInspectError(
                        "none of the replies named a registered repository",
                        hint="Mention the agent again and name the repository",
                    ),
                    end=True,
                )
                return
            routed = await self.router.route(user, event.agent_session.issue, reply)
            if isinstance(routed, Unsure):
                await self._ask(row, routed.candidates, created.id, asked + 1)
                return
            repo = routed.repo  # the reply names none, but the issue does now
        await self.start(user, row, event, repo, created)

    async def _stop(self, row: LinearSession, event: AgentSessionEvent, marker: str) -> None:
        stopped = False
        if row.session_id is not None:
            user = await self.who(row.org_id, event.person_id)
            try:
                for queued in await self.store.prompts.unfinished(row.session_id):
                    if queued.status == "queued":
                        cancel = CancelPrompt(session_id=row.session_id, prompt_id=queued.id)
                        await self.commands.handle(user, cancel, origin="linear")
                stop = Stop(session_id=row.session_id)
                stopped = await self.commands.handle(user, stop, origin="linear")
            except OpenInspectError as exc:
                await self._refuse(row, f"error:{row.agent_session_id}:{marker}", exc)
                return
        await self.store.linear.set_status(row.agent_session_id, "stopped")
        if not stopped:  # nothing ran: no prompt will end to say it
            await self._post(row, f"final:stop:{marker}", activities.message("response", STOPPED))
