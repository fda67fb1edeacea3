"""The one entry point for commands: ``handle(user, command, origin=…)``.

Every door — the REST routes, the WebSocket's command frames, the CLI (through REST), and later
Slack, Linear, GitHub, schedules — turns its input into a ``domain.commands`` command and calls
``handle``. It authorises (``people.roles``: admins reach every session, members theirs), runs
the checks that do not depend on the door, and dispatches to the manager or the session's actor.
Failures are ``OpenInspectError``s with stable codes; each door renders them its own way.

``origin`` is the door the command came through, decided by the server, never read from a
command: a door that takes a client's word for it (the REST API's ``origin`` field) passes it
through ``client_origin`` first, which allows only the doors a client may claim.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import overload

from openinspect.domain.commands import (
    CancelPrompt,
    Command,
    OpenPullRequest,
    SetPresence,
    StartSession,
    Stop,
    SubmitPrompt,
    Typing,
    UpdateSession,
)
from openinspect.domain.models import (
    CLIENT_ORIGINS,
    Prompt,
    PullRequestRecord,
    Session,
    SessionOrigin,
    User,
)
from openinspect.errors import OriginNotAllowed, PromptNotFound
from openinspect.people.roles import ensure_can_see
from openinspect.sessions.actor import check_prompt
from openinspect.sessions.manager import SessionManager, clean_title


@dataclass(frozen=True)
class Started:
    """A started session, its first prompt, and whether this was a retry of an earlier start
    (same idempotency key and request: nothing new was made)."""

    session: Session
    prompt: Prompt | None
    replayed: bool = False


def client_origin(claimed: str | None) -> SessionOrigin:
    """The door a client says it is (``api`` when it says nothing), if a client may say so."""
    if claimed is None:
        return "api"
    for origin in CLIENT_ORIGINS:
        if claimed == origin:
            return origin
    raise OriginNotAllowed(
        "A client may say it is one of: " + ", ".join(CLIENT_ORIGINS),
        hint="Leave the origin out, or use web, cli or api; integrations set their own",
    )


def start_fingerprint(command: StartSession, origin: SessionOrigin) -> str:
    """What makes two starts the same request: every field but the key itself."""
    fields = command.model_dump(mode="json", exclude={"idempotency_key"})
    raw = json.dumps({**fields, "origin": origin}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def first_prompt_request_id(command: StartSession) -> str | None:
    """The first prompt's ``client_request_id``: the client's, else one derived from the
    idempotency key, so a retried start never queues the prompt twice."""
    if command.client_request_id is not None or command.idempotency_key is None:
        return command.client_request_id
    return "start-" + hashlib.sha256(command.idempotency_key.encode()).hexdigest()[:40]


class CommandHandler:
    """Dispatches commands to the session manager and the actors it owns."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager

    @overload
    async def handle(
        self, user: User, command: StartSession, *, origin: SessionOrigin
    ) -> Started: ...
    @overload
    async def handle(
        self, user: User, command: SubmitPrompt | CancelPrompt, *, origin: SessionOrigin
    ) -> Prompt: ...
    @overload
    async def handle(self, user: User, command: Stop, *, origin: SessionOrigin) -> bool: ...
    @overload
    async def handle(
        self, user: User, command: Typing | SetPresence, *, origin: SessionOrigin
    ) -> None: ...
    @overload
    async def handle(
        self, user: User, command: UpdateSession, *, origin: SessionOrigin
    ) -> Session: ...
    @overload
    async def handle(
        self, user: User, command: OpenPullRequest, *, origin: SessionOrigin
    ) -> PullRequestRecord: ...

    async def handle(
        self, user: User, command: Command, *, origin: SessionOrigin
    ) -> Started | Prompt | bool | Session | PullRequestRecord | None:
        """Authorise ``user`` for ``command`` and carry it out; raises ``OpenInspectError``."""
        if isinstance(command, StartSession):
            return await self._start(user, command, origin)
        manager = self.manager
        # The same answer for a session that does not exist and one the user may not see.
        await ensure_can_see(manager.services.store, user, command.session_id)
        if isinstance(command, SetPresence):
            await manager.presence.update(
                command.session_id, command.client_id, user.id, command.status
            )
            return None
        if isinstance(command, UpdateSession):
            return await self._update(command)
        actor = await manager.actor(command.session_id)
        if isinstance(command, SubmitPrompt):
            return await actor.submit(
                user,
                command.content,
                model=command.model,
                effort=command.effort,
                client_request_id=command.client_request_id,
            )
        if isinstance(command, CancelPrompt):
            await actor.cancel(command.prompt_id)
            return await self._prompt(command.session_id, command.prompt_id)
        if isinstance(command, Stop):
            return await actor.stop()
        if isinstance(command, Typing):
            await manager.warm(user, actor)
            return None
        return await actor.open_pull_request(
            None, user, title=command.title, body=command.body, draft=command.draft
        )

    async def _start(self, user: User, command: StartSession, origin: SessionOrigin) -> Started:
        manager = self.manager
        request_id = first_prompt_request_id(command)
        if command.prompt is not None:  # refused before anything is made
            check_prompt(manager.services.settings, command.prompt, request_id)
        fingerprint = start_fingerprint(command, origin)
        replayed = False
        session = None
        if command.idempotency_key is not None:
            session = await manager.created_with_key(user, command.idempotency_key, fingerprint)
            replayed = session is not None
        if session is None:
            session = await manager.create(
                user,
                repo=command.repo,
                base_branch=command.base_branch,
                model=command.model,
                effort=command.effort,
                title=command.title,
                origin=origin,
                origin_ref=command.origin_ref,
                idempotency_key=command.idempotency_key,
                fingerprint=fingerprint if command.idempotency_key is not None else None,
            )
        if command.prompt is None:
            return Started(session, None, replayed)
        store = manager.services.store
        if replayed and request_id is not None:
            found = await store.prompts.by_client_request_id(session.id, request_id)
            if found is not None:  # the first start queued it: do not ask the session again
                return Started(await manager.get(session.id), found[0], replayed)
        actor = await manager.actor(session.id)
        prompt = await actor.submit(user, command.prompt, client_request_id=request_id)
        return Started(actor.session, prompt, replayed)

    async def _update(self, command: UpdateSession) -> Session:
        title = clean_title(command.title) if command.title is not None else None  # first
        actor = await self.manager.actor(command.session_id)
        if title is not None:
            await actor.rename(title)
        if command.archived is True:
            await actor.archive()
        elif command.archived is False:
            await actor.unarchive()
        return actor.session

    async def _prompt(self, session_id: str, prompt_id: str) -> Prompt:
        prompt = await self.manager.services.store.prompts.get(prompt_id)
        if prompt is None or prompt.session_id != session_id:
            raise PromptNotFound(f"No prompt {prompt_id!r} in session {session_id}")
        return prompt
