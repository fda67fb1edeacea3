"""The one entry point for commands: ``handle(user, command, origin=…)``.

Every door — the REST routes, the WebSocket's command frames, the CLI (through REST), and later
Slack, Linear, GitHub, schedules — turns its input into a ``domain.commands`` command and calls
``handle``. It authorises (``people.roles``: admins reach every session, members theirs), runs
the checks that do not depend on the door, and dispatches to the manager or the session's actor.
Failures are ``OpenInspectError``s with stable codes; each door renders them its own way.

``origin`` is the door the command came through, decided by the server, never read from a
command: a door that takes a client's word for it (the REST API's ``origin`` field) passes it
through ``client_origin`` first, which allows only the doors a client may claim.

With several replicas, a command for a session goes to the session's owner: carried out here
when this replica owns the session or can take it (nobody does), else forwarded over the bus
(``sessions/forwarding.py``) and the owner's answer returned (or its error raised) as if it had
run here. The owner authorises the sender again (``serve``). Presence and reads need no owner.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import overload

from pydantic import JsonValue, ValidationError

from openinspect.bus import Bus
from openinspect.domain.commands import (
    CancelPrompt,
    Command,
    ForkSession,
    OpenPullRequest,
    SessionCommand,
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
from openinspect.errors import (
    SESSION_NOT_FOUND_HINT,
    InvalidInput,
    OriginNotAllowed,
    OwnerGone,
    OwnerUnreachable,
    PromptNotFound,
    SessionMoved,
    SessionNotFound,
)
from openinspect.people.roles import ensure_can_see
from openinspect.sessions.actor import SessionActor, check_prompt
from openinspect.sessions.forwarding import ForwardedCommand, Forwarder
from openinspect.sessions.manager import SessionManager, clean_title

ROUTE_ATTEMPTS = 4
"""Tries to find a session's owner: each may race with a takeover, an eviction or a failover."""
Result = Prompt | bool | Session | PullRequestRecord | None


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
    """Dispatches commands to the session manager and the actors it owns, and to the owners
    of the sessions other replicas own. Start ``forwarder`` before commands come in."""

    def __init__(self, manager: SessionManager, bus: Bus) -> None:
        self.manager = manager
        self.forwarder = Forwarder(
            bus,
            manager.replica_id,
            timeout_s=manager.deps.settings.ownership.forward_timeout_s,
            serve=self.serve,
        )

    @overload
    async def handle(
        self, user: User, command: StartSession, *, origin: SessionOrigin
    ) -> Started: ...
    @overload
    async def handle(
        self, user: User, command: ForkSession, *, origin: SessionOrigin
    ) -> Session: ...
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
        await ensure_can_see(manager.deps.store, user, command.session_id)
        if isinstance(command, ForkSession):
            return await self._fork(user, command, origin)
        if isinstance(command, SetPresence):
            await manager.presence.update(
                command.session_id, command.client_id, user.id, command.status
            )
            return None
        return await self._at_owner(user, command, origin)

    async def _at_owner(self, user: User, command: SessionCommand, origin: SessionOrigin) -> Result:
        """Carry out ``command`` where its session is live: here (taking it if nobody owns it),
        or on its owner over the bus."""
        manager = self.manager
        for _ in range(ROUTE_ATTEMPTS):
            actor = await manager.owned_actor(command.session_id)
            if actor is not None:
                try:
                    return await self._act(user, actor, command)
                except SessionMoved:
                    if not actor.closed:
                        raise
                    continue  # evicted or taken over while we came: route it again
            owner = await manager.ownership.owner(command.session_id)
            if owner is None or owner == manager.replica_id:
                continue  # freed meanwhile: take it on the next try

            async def still_owner(owner: str = owner) -> bool:
                return await manager.ownership.owner(command.session_id) == owner

            try:
                answer = await self.forwarder.send(
                    owner, user.id, origin, command, still_owner=still_owner
                )
            except SessionMoved:
                continue
            except OwnerGone:
                if not _safe_to_repeat(command):
                    raise
                continue  # the next owner carries it out (again, harmlessly)
            return _result_of(command, answer)
        raise SessionMoved(
            f"Session {command.session_id} moved between servers while this command looked for it",
            hint="Send the command again",
        )

    async def serve(self, request: ForwardedCommand) -> JsonValue:
        """A command another replica forwarded to this one, as the session's owner. The user
        is loaded and authorised again here; a session this replica does not own (any more)
        is ``SessionMoved``, and the sender routes the command again."""
        command = request.command
        user = await self.manager.deps.store.users.get(request.user_id)
        if user is None:
            raise SessionNotFound(f"No session {command.session_id!r}", hint=SESSION_NOT_FOUND_HINT)
        await ensure_can_see(self.manager.deps.store, user, command.session_id)
        if isinstance(command, SetPresence):
            raise InvalidInput("Presence is kept where the client is connected, not forwarded")
        actor = await self.manager.owned_actor(command.session_id, take=False)
        if actor is None:
            raise SessionMoved(f"Session {command.session_id} is not live on this server")
        result = await self._act(user, actor, command)
        if isinstance(result, Prompt | Session | PullRequestRecord):
            return result.model_dump(mode="json")
        return result

    async def _act(self, user: User, actor: SessionActor, command: SessionCommand) -> Result:
        """Carry out a session command on its live actor (this replica owns the session)."""
        manager = self.manager
        if isinstance(command, UpdateSession):
            return await self._update(actor, command)
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
        if isinstance(command, SetPresence):
            raise InvalidInput("Presence is kept where the client is connected")
        return await actor.open_pull_request(
            None, user, title=command.title, body=command.body, draft=command.draft
        )

    async def _start(self, user: User, command: StartSession, origin: SessionOrigin) -> Started:
        manager = self.manager
        request_id = first_prompt_request_id(command)
        if command.prompt is not None:  # refused before anything is made
            check_prompt(manager.deps.settings, command.prompt, request_id)
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
                work_branch=command.work_branch,
                start_ref=command.start_ref,
            )
        if command.prompt is None:
            return Started(session, None, replayed)
        store = manager.deps.store
        if replayed and request_id is not None:
            found = await store.prompts.by_client_request_id(session.id, request_id)
            if found is not None:  # the first start queued it: do not ask the session again
                return Started(await manager.get(session.id), found[0], replayed)
        submit = SubmitPrompt(
            session_id=session.id, content=command.prompt, client_request_id=request_id
        )
        prompt = await self._at_owner(user, submit, origin)
        assert isinstance(prompt, Prompt)
        return Started(await manager.get(session.id), prompt, replayed)

    async def _fork(self, user: User, command: ForkSession, origin: SessionOrigin) -> Session:
        """A fork only reads its source (its log, conversation and pushed commits, all in the
        store and the mirror): it runs here, whoever owns the source."""
        title = clean_title(command.title) if command.title is not None else None
        source = await self.manager.get(command.session_id)
        return await self.manager.fork(user, source, command.at_seq, title=title, origin=origin)

    async def _update(self, actor: SessionActor, command: UpdateSession) -> Session:
        title = clean_title(command.title) if command.title is not None else None  # first
        if title is not None:
            await actor.rename(title)
        if command.archived is True:
            await actor.archive()
        elif command.archived is False:
            await actor.unarchive()
        return actor.session

    async def _prompt(self, session_id: str, prompt_id: str) -> Prompt:
        prompt = await self.manager.deps.store.prompts.get(prompt_id)
        if prompt is None or prompt.session_id != session_id:
            raise PromptNotFound(f"No prompt {prompt_id!r} in session {session_id}")
        return prompt


def _safe_to_repeat(command: SessionCommand) -> bool:
    """Whether carrying ``command`` out twice is the same as once: every session command but a
    prompt without a ``client_request_id`` (it would be queued twice)."""
    return not isinstance(command, SubmitPrompt) or command.client_request_id is not None


def _result_of(command: SessionCommand, answer: JsonValue) -> Result:
    """The owner's JSON answer to ``command`` as the type ``handle`` returns for it."""
    try:
        if isinstance(command, SubmitPrompt | CancelPrompt):
            return Prompt.model_validate(answer)
        if isinstance(command, UpdateSession):
            return Session.model_validate(answer)
        if isinstance(command, OpenPullRequest):
            return PullRequestRecord.model_validate(answer)
    except ValidationError as exc:
        raise OwnerUnreachable(
            f"The server that runs session {command.session_id} answered a "
            f"{command.type} with something else ({exc.error_count()} errors)",
            hint="Try again; if it persists, the servers run different versions",
        ) from None
    if isinstance(command, Stop) and isinstance(answer, bool):
        return answer
    if isinstance(command, Typing | SetPresence) and answer is None:
        return None
    raise OwnerUnreachable(
        f"The server that runs session {command.session_id} answered a {command.type} with "
        "something else",
        hint="Try again; if it persists, the servers run different versions",
    )
