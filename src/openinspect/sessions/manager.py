"""SessionManager: creates sessions, owns the live SessionActors, recovers after a crash.

On start it marks prompts left ``running`` by a dead process as ``interrupted`` (with a
``prompt-finished`` event, never silently, after recording any push of theirs that landed on the
origin unrecorded: ``sessions.git_recovery``) and restarts the queues of sessions with queued
prompts.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from openinspect.domain.events import PromptFinished, SessionCreated, SessionUpdated, utcnow
from openinspect.domain.ids import new_id, session_branch
from openinspect.domain.models import UNTITLED_SESSION, Author, Session, SessionOrigin, User
from openinspect.errors import (
    SESSION_NOT_FOUND_HINT,
    GitError,
    IdempotencyKeyReused,
    InvalidInput,
    SessionNotFound,
)
from openinspect.sessions.actor import Services, SessionActor
from openinspect.sessions.diff import SessionDiffs
from openinspect.sessions.git import branch_exists, normalize_origin
from openinspect.sessions.git_recovery import reconcile_pushes
from openinspect.sessions.limits import UserLimits
from openinspect.sessions.presence import Presence

log = logging.getLogger(__name__)
TITLE_MAX_CHARS = 200
SESSION_ID_DRAWS = 5
BRANCH_NAME_MAX = 255
_BAD_BRANCH_CHARS = set(" ~^:?*[\\") | {chr(c) for c in range(32)}
# Control, format (bidi overrides, zero-width), line and paragraph separators, surrogates and
# private-use characters: what could hide or reorder text in a title.
_NON_PRINTING = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
RepoGuard = Callable[[User, str, bool], Awaitable[None]]
"""Called with (user, repo URL or path, whether it is registered) before a session is created;
raises to refuse (``people.roles.SessionRepoPolicy``)."""


def clean_title(title: str) -> str:
    """A title given by a person: trimmed, 1 to ``TITLE_MAX_CHARS`` characters, one line of
    printable text."""
    cleaned = title.strip()
    if not cleaned or len(cleaned) > TITLE_MAX_CHARS:
        raise InvalidInput(
            f"A title has 1 to {TITLE_MAX_CHARS} characters; this one has {len(cleaned)}",
            hint="Give a short, non-empty title",
        )
    if any(unicodedata.category(c) in _NON_PRINTING for c in cleaned):
        raise InvalidInput(
            "A title is one line of printable text",
            hint="Remove line breaks, tabs and other control characters",
        )
    return cleaned


def validate_branch(name: str) -> str:
    """A conservative check of a git branch name; a clear error instead of a git failure later."""
    if (
        not name
        or len(name) > BRANCH_NAME_MAX
        or name.startswith(("-", "/"))
        or ".." in name
        or name.endswith((".lock", "/", "."))
        or "@{" in name
        or any(c in _BAD_BRANCH_CHARS for c in name)
    ):
        raise InvalidInput(
            f"Invalid branch name {name!r}",
            hint="Use letters, digits, '-', '_', '.' and '/' (e.g. main)",
        )
    return name


class SessionManager:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.presence = Presence(
            services.store.presence, services.events, services.settings.sessions
        )
        self.diffs = SessionDiffs(services.settings.mirrors_dir, auth_env=services.origins.git_env)
        self._actors: dict[str, SessionActor] = {}
        self.repo_guard: RepoGuard | None = None
        self.limits = UserLimits(services.settings, services.store)
        self._lock = asyncio.Lock()

    def running_prompt(self, session_id: str) -> str | None:
        """The prompt the session is running now, if it is live here."""
        actor = self._actors.get(session_id)
        return actor.running_prompt_id if actor is not None else None

    async def recover(self) -> None:
        """Reconcile the store with a process that died: sandboxes are gone, running prompts
        were interrupted, queued prompts still want to run."""
        store = self.services.store
        await store.sandboxes.mark_all_stopped()
        for prompt in await store.prompts.running_anywhere():
            # Before the prompt ends in the log: a push it made may have landed unrecorded.
            await reconcile_pushes(
                store, self.services.events, self.services.origins, prompt.session_id, prompt.id
            )
            await store.prompts.set_status(
                prompt.id,
                "interrupted",
                error_code="interrupted",
                error_message="The server stopped while this prompt was running",
                only_if=("running",),
            )
            await self.services.events.append(
                PromptFinished(
                    session_id=prompt.session_id, prompt_id=prompt.id, status="interrupted"
                )
            )
            log.warning("prompt %s of session %s was interrupted", prompt.id, prompt.session_id)
        for session in await store.sessions.list(statuses=("active", "idle"), limit=10_000):
            if session.sandbox_status not in ("none", "stopped", "lost", "failed"):
                await store.sessions.update(session.id, sandbox_status="lost")
            if await store.prompts.for_session(session.id, ("queued",)):
                (await self.actor(session.id)).start()
            elif session.status == "active":
                await store.sessions.update(session.id, status="idle")
                await self.services.events.append(
                    SessionUpdated(session_id=session.id, status="idle")
                )

    async def create(
        self,
        user: User,
        *,
        repo: str,
        base_branch: str | None = None,
        model: str | None = None,
        effort: str | None = None,
        title: str | None = None,
        origin: SessionOrigin = "api",
        origin_ref: str | None = None,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> Session:
        """Create a session on a repo (registered name or id, local path, or git URL).

        With an ``idempotency_key``, a create that loses a race to another under the same key
        (any replica) returns the winner's session, or raises ``IdempotencyKeyReused`` when the
        winner was a different request (another ``fingerprint``)."""
        store = self.services.store
        await self.limits.check_working(user, None)  # before anything is fetched or stored
        registered = await store.repos.find(repo)
        if self.repo_guard is not None:  # roles and the GitHub access check; before any fetch
            await self.repo_guard(user, registered.url if registered else repo, bool(registered))
        origins = self.services.origins
        repo_url = origins.canonical(registered.url if registered else normalize_origin(repo))
        base = validate_branch(base_branch or (registered.default_branch if registered else "main"))
        model_id = model or self.services.models.default_model()
        await self.services.models.check(model_id, effort)
        mirror = await origins.mirror(self.services.settings.mirrors_dir, repo_url)
        if not await branch_exists(mirror, base):
            raise InvalidInput(
                f"Branch {base!r} does not exist in {repo_url}",
                hint="Choose a base branch that exists in the repo",
            )
        now = utcnow()
        session_id = await self._claim_session_id(repo_url, mirror)
        session = Session(
            id=session_id,
            title=(title or "").strip()[:TITLE_MAX_CHARS] or UNTITLED_SESSION,
            repo_url=repo_url,
            repo_id=registered.id if registered else None,
            base_branch=base,
            branch=session_branch(session_id),
            model=model_id,
            effort=effort,
            status="created",
            sandbox_status="none",
            creator_id=user.id,
            parent_id=None,
            total_cost_usd=0.0,
            last_seq=0,
            created_at=now,
            updated_at=now,
            origin=origin,
            origin_ref=origin_ref,
        )
        if not await store.sessions.create(
            session, idempotency_key=idempotency_key, fingerprint=fingerprint
        ):
            await store.branches.release(session_id)
            assert idempotency_key is not None  # only a keyed create can lose a race
            winner = await self.created_with_key(user, idempotency_key, fingerprint)
            assert winner is not None  # the key's row is what refused this insert
            return winner
        await self.services.events.append(
            SessionCreated(
                session_id=session_id,
                title=session.title,
                repo_url=repo_url,
                base_branch=base,
                branch=session.branch,
                model=model_id,
                effort=effort,
                creator=Author.of(user),
                origin=origin,
            )
        )
        return session

    async def created_with_key(
        self, user: User, idempotency_key: str, fingerprint: str | None
    ) -> Session | None:
        """The session ``user`` already created under ``idempotency_key``, if any; raises
        ``IdempotencyKeyReused`` when it was created by a different request."""
        found = await self.services.store.sessions.by_idempotency_key(user.id, idempotency_key)
        if found is None:
            return None
        session, earlier = found
        if earlier != fingerprint:
            raise IdempotencyKeyReused(
                "This idempotency key was already used for a different session create",
                hint="Use a new key for a new session; resend the same request to get its session",
            )
        return session

    async def _claim_session_id(self, origin: str, mirror: Path) -> str:
        """A new session id whose branch this session now owns on ``origin``: never a name that
        another session claimed or that already exists on the origin (ids are random, so a
        second draw is a rare event and a third one rarer still)."""
        branches = self.services.store.branches
        for _ in range(SESSION_ID_DRAWS):
            session_id = new_id("ses")
            branch = session_branch(session_id)
            if await branch_exists(mirror, branch):
                continue
            if await branches.claim(session_id, origin, branch):
                return session_id
        raise GitError(
            f"No free session branch name on {origin} after {SESSION_ID_DRAWS} draws",
            hint="Delete stale openinspect/… branches on the origin",
        )

    async def get(self, session_id: str) -> Session:
        session = await self.services.store.sessions.get(session_id)
        if session is None:
            raise SessionNotFound(f"No session {session_id!r}", hint=SESSION_NOT_FOUND_HINT)
        return session

    async def actor(self, session_id: str) -> SessionActor:
        """The live actor of a session, created on first use."""
        async with self._lock:
            actor = self._actors.get(session_id)
            if actor is None:
                actor = SessionActor(await self.get(session_id), self.services)
                actor.admission = self._admit
                self._actors[session_id] = actor
            return actor

    def live_actors(self) -> list[SessionActor]:
        """The actors of this process (each owns its session's sandbox here)."""
        return list(self._actors.values())

    async def discard_vanished(self) -> list[str]:
        """Drop the actors of sessions that no longer exist (drafts deleted by any server's
        sweep), stopping their sandboxes. Returns their ids."""
        gone = set(self._actors) - await self.services.store.sessions.existing(list(self._actors))
        async with self._lock:
            actors = [self._actors.pop(sid) for sid in gone if sid in self._actors]
        await asyncio.gather(*(a.discard() for a in actors), return_exceptions=True)
        return sorted(gone)

    async def _admit(self, user: User, actor: SessionActor) -> None:
        """Per-user limits on a new prompt: the prompting user's working sessions, and room for
        a sandbox among those of the session's creator."""
        await self.limits.check_working(user, actor.session.id)
        creator = user if user.id == actor.session.creator_id else await self._creator(actor)
        await self.limits.make_room(creator, actor, list(self._actors.values()))

    async def warm(self, user: User, actor: SessionActor) -> None:
        """Someone is typing: start the sandbox early, if that stops nobody else's."""
        if await self.limits.has_room(await self._creator(actor), actor):
            actor.typing()

    async def _creator(self, actor: SessionActor) -> User:
        creator = await self.services.store.users.get(actor.session.creator_id)
        if creator is None:  # the creator was removed: the session is nobody's to run
            raise SessionNotFound(f"No session {actor.session.id!r}")
        return creator

    async def snapshot(self, session_id: str) -> dict[str, Any]:
        """What a joining client needs besides events: the session, who is here, the queue."""
        session = await self.get(session_id)
        queue = await self.services.store.prompts.unfinished(session_id)
        return {
            "session": session.model_dump(mode="json"),
            "participants": await self.presence.snapshot(session_id),
            "queue": [p.model_dump(mode="json") for p in queue],
        }

    async def close(self) -> None:
        """Stop every actor; running prompts stay ``running`` in the store and are marked
        interrupted by the next start's ``recover``."""
        actors = list(self._actors.values())
        self._actors.clear()
        await asyncio.gather(*(a.close() for a in actors), return_exceptions=True)
