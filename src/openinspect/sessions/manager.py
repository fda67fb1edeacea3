"""SessionManager: creates sessions, owns the live SessionActors of this replica, takes over
the sessions of a replica that died.

A session is live here while this replica holds its lease (``sessions/ownership.py``):
``owned_actor`` gives its actor, taking the lease first when nobody holds it. Taking a session
over recovers what its last owner left (``_recover``): a prompt it left ``running`` becomes
``interrupted`` (with a ``prompt-finished`` event, never silently, after recording any push of
its that landed on the origin unrecorded: ``sessions.git_recovery``), a sandbox it had is
``lost``, and the queue runs on. ``adopt_orphans`` does that for every session with work whose
owner is gone (at start-up, then every ``ownership.failover_interval_s`` on every replica), so a
second replica starting never touches what a live one runs. ``evict_idle`` closes the actors
that have nothing to do, so memory follows the active sessions.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from openinspect.domain.events import (
    GitPush,
    PromptFinished,
    SandboxStatusChanged,
    SessionCreated,
    SessionUpdated,
    utcnow,
)
from openinspect.domain.ids import new_id, session_branch
from openinspect.domain.models import UNTITLED_SESSION, Author, Session, SessionOrigin, User
from openinspect.errors import (
    SESSION_NOT_FOUND_HINT,
    BranchNotFound,
    GitError,
    IdempotencyKeyReused,
    InvalidInput,
    SessionMoved,
    SessionNotFound,
)
from openinspect.sessions.actor import SessionActor, SessionDeps
from openinspect.sessions.diff import SessionDiffs
from openinspect.sessions.fork import ForkStart, check_fork_point, fork_title, plan_fork
from openinspect.sessions.git import branch_exists, commit_of, default_branch, normalize_origin
from openinspect.sessions.git_recovery import reconcile_pushes
from openinspect.sessions.limits import UserLimits
from openinspect.sessions.ownership import Ownership
from openinspect.sessions.presence import Presence
from openinspect.store.changes import Change, NewSession, PromptMove
from openinspect.store.leases import Lease

log = logging.getLogger(__name__)
TITLE_MAX_CHARS = 200
SESSION_ID_DRAWS = 5
BRANCH_NAME_MAX = 255
_BAD_BRANCH_CHARS = set(" ~^:?*[\\") | {chr(c) for c in range(32)}
# Control, format (bidi overrides, zero-width), line and paragraph separators, surrogates and
# private-use characters: what could hide or reorder text in a title.
_NON_PRINTING = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
ORPHANS_PER_PASS = 200
"""Sessions one failover pass takes over at most (the rest wait for the next pass)."""
_ENDED_SANDBOX = ("none", "stopped", "lost", "failed")
_START_REF = re.compile(r"refs/pull/[1-9][0-9]{0,9}/head")
"""The refs a session's own branch may start at (GitHub keeps a pull request's head there)."""
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
    def __init__(
        self,
        deps: SessionDeps,
        *,
        repo_guard: RepoGuard | None = None,
        replica_id: str | None = None,
    ) -> None:
        self.deps = deps
        self.presence = Presence(deps.store.presence, deps.events, deps.settings.sessions)
        self.diffs = SessionDiffs(deps.settings.mirrors_dir, auth_env=deps.origins.git_env)
        self._actors: dict[str, SessionActor] = {}
        self._repo_guard = repo_guard
        self.limits = UserLimits(deps.settings, deps.store)
        self.ownership = Ownership(
            deps.store,
            ttl_s=deps.settings.ownership.lease_ttl_s,
            replica_id=replica_id,
            on_lost=self._lost,
        )
        self._taking: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._dropping: set[asyncio.Task[None]] = set()

    @property
    def replica_id(self) -> str:
        return self.ownership.replica_id

    @property
    def single_replica(self) -> bool:
        """With the in-process bus no other server can share the sessions (nor be forwarded
        a command): this one is the only replica by construction."""
        return self.deps.settings.bus_url.split("://", 1)[0] == "memory"

    def lease_of(self, session_id: str) -> Lease | None:
        """The lease this replica owns the session by, if it is live here."""
        actor = self._actors.get(session_id)
        return actor.lease if actor is not None and not actor.closed else None

    def running_prompt(self, session_id: str) -> str | None:
        """The prompt the session is running now, if it is live here."""
        actor = self._actors.get(session_id)
        return actor.running_prompt_id if actor is not None else None

    async def recover(self) -> None:
        """On start, before this server takes prompts: take over the sessions whose owner died
        (``adopt_orphans``), and start renewing the leases. As the only replica (the in-process
        bus), the leases left in the store are its dead predecessor's: they are ended first,
        so nothing waits for them to run out."""
        if self.single_replica:
            await self.deps.store.owners.free_all()
        self.ownership.start()
        await self.adopt_orphans()

    async def adopt_orphans(self) -> list[str]:
        """Take over every session with work (a running or queued prompt, a sandbox up, status
        active) whose lease is free or expired. Safe on every replica at once: one takes each.
        Returns the sessions taken here."""
        taken = []
        for session_id in await self.deps.store.owners.orphans(ORPHANS_PER_PASS):
            try:
                if await self.owned_actor(session_id) is not None:
                    taken.append(session_id)
            except SessionNotFound:
                continue  # deleted meanwhile
        return taken

    async def owned_actor(self, session_id: str, *, take: bool = True) -> SessionActor | None:
        """The actor of a session this replica owns. When nobody owns it (and ``take``), this
        replica takes its lease, recovers what a dead owner left, and starts its queue. None
        while another replica owns it. ``SessionNotFound`` if it does not exist."""
        actor = self._actors.get(session_id)
        if actor is not None and not actor.closed:
            return actor
        if not take:
            return None
        lock = self._taking.setdefault(session_id, asyncio.Lock())
        async with lock:
            actor = self._actors.get(session_id)
            if actor is not None and not actor.closed:
                return actor
            await self.get(session_id)  # not found: no lease is taken for it
            lease = await self.ownership.take(session_id)
            if lease is None:
                return None
            try:
                queued = await self._recover(session_id, lease)
                actor = SessionActor(
                    await self.get(session_id),
                    self.deps,
                    lease=lease,
                    admission=self._admit,
                    on_lease_lost=self._fenced_off,
                )
            except BaseException:
                await self.ownership.release(session_id)
                raise
            stale = self._actors.get(session_id)
            self._actors[session_id] = actor
            if stale is not None:  # closed: evicted or lost, and taken again now
                await stale.lose()
            if queued:
                actor.start()
            return actor

    async def actor(self, session_id: str) -> SessionActor:
        """The live actor of a session, taken on first use; ``SessionMoved`` while another
        replica owns it (commands go through ``CommandHandler.handle``, which forwards)."""
        actor = await self.owned_actor(session_id)
        if actor is None:
            raise SessionMoved(
                f"Session {session_id} is live on another server",
                hint="Send the command again; it goes to the server that owns the session",
            )
        return actor

    async def _recover(self, session_id: str, lease: Lease) -> bool:
        """What a dead owner left, put right under the new ``lease``: its running prompt is
        interrupted, its sandbox is lost, an active session with nothing queued is idle.
        Returns whether prompts are queued (the queue then runs on here)."""
        store, events = self.deps.store, self.deps.events
        await store.owners.sandboxes_lost(session_id)
        for prompt in await store.prompts.for_session(session_id, ("running",)):
            # Before the prompt ends in the log: a push it made may have landed unrecorded.
            await reconcile_pushes(
                store, events, self.deps.origins, session_id, prompt.id, fence=lease
            )
            interrupted = await events.commit(
                Change(
                    PromptFinished(
                        session_id=session_id, prompt_id=prompt.id, status="interrupted"
                    ),
                    prompt=PromptMove(
                        prompt.id,
                        "interrupted",
                        only_if=("running",),
                        error_code="interrupted",
                        error_message="The server stopped while this prompt was running",
                    ),
                    fence=lease,
                )
            )
            if interrupted is not None:
                log.warning("prompt %s of session %s was interrupted", prompt.id, session_id)
        session = await self.get(session_id)
        if session.sandbox_status not in _ENDED_SANDBOX:
            await events.append(
                SandboxStatusChanged(
                    session_id=session_id,
                    status="lost",
                    message="the server that ran it stopped",
                ),
                session_values={"sandbox_status": "lost"},
                fence=lease,
            )
        queued = bool(await store.prompts.for_session(session_id, ("queued",)))
        if not queued and session.status == "active":
            await events.append(
                SessionUpdated(session_id=session_id, status="idle"),
                session_values={"status": "idle"},
                fence=lease,
            )
        return queued

    async def evict_idle(self, idle_s: float) -> list[str]:
        """Close the actors with nothing queued or running and no sandbox up that had no work
        for ``idle_s`` seconds, free their leases and forget them. Returns their sessions."""
        evicted = []
        for session_id, actor in list(self._actors.items()):
            if await actor.close_if_idle(idle_s):
                await self._drop(session_id, actor, release=True)
                evicted.append(session_id)
        if evicted:
            log.info("%d idle sessions left this server's memory", len(evicted))
        return evicted

    async def _drop(self, session_id: str, actor: SessionActor, *, release: bool) -> None:
        if self._actors.get(session_id) is actor:
            del self._actors[session_id]
        if release:
            await self.ownership.release(session_id)
        self.deps.events.forget(session_id)

    async def _lost(self, session_id: str) -> None:
        """The lease of a session was not renewed: its actor stops here, writing nothing."""
        actor = self._actors.get(session_id)
        if actor is not None:
            actor.closed = True
            await self._drop(session_id, actor, release=False)
            await actor.lose()

    def _fenced_off(self, session_id: str) -> None:
        """An actor's append was refused by the fence: drop it (on a task of its own, since
        the actor's own task is among those it stops)."""
        self.ownership.forget(session_id)
        task = asyncio.create_task(self._lost(session_id), name=f"lost {session_id}")
        self._dropping.add(task)
        task.add_done_callback(self._dropping.discard)

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
        work_branch: str | None = None,
        start_ref: str | None = None,
        fork: ForkStart | None = None,
    ) -> Session:
        """Create a session on a repo (registered name or id, local path, or git URL).

        With an ``idempotency_key``, a create that loses a race to another under the same key
        (any replica) returns the winner's session, or raises ``IdempotencyKeyReused`` when the
        winner was a different request (another ``fingerprint``).

        ``work_branch`` (integrations only): the session works on that existing branch instead
        of one of its own (see ``StartSession.work_branch``); its push record starts at the
        branch's head, and the git proxy lets it only fast-forward it. ``start_ref``
        (integrations only): the session's own branch is made on the origin at that ref (a
        fork's ``refs/pull/<n>/head``) before the session exists, so its sandbox starts there.
        Either one missing from the repo is ``BranchNotFound``. ``fork``: the session is a fork
        (``sessions/fork.py``): its branch is made at the fork's commit, and it starts with the
        fork's conversation, stored with it."""
        if work_branch is not None and start_ref is not None:
            raise InvalidInput("A session works on an existing branch or starts one, not both")
        store = self.deps.store
        await self.limits.check_working(user, None)  # before anything is fetched or stored
        registered = await store.repos.find(repo)
        if self._repo_guard is not None:  # roles and the GitHub access check; before any fetch
            await self._repo_guard(user, registered.url if registered else repo, bool(registered))
        origins = self.deps.origins
        repo_url = origins.canonical(registered.url if registered else normalize_origin(repo))
        if base_branch is not None:
            validate_branch(base_branch)
        model_id = model or self.deps.models.default_model()
        await self.deps.models.check(model_id, effort)
        mirror = await origins.mirror(self.deps.settings.mirrors_dir, repo_url)
        # No base branch asked for: the registered repo's, else the origin's own default (a
        # repo made with a plain ``git init`` may have ``master``), else ``main``.
        base = validate_branch(
            base_branch
            or (registered.default_branch if registered else None)
            or await default_branch(mirror)
            or "main"
        )
        if not await branch_exists(mirror, base):
            raise InvalidInput(
                f"Branch {base!r} does not exist in {repo_url}",
                hint="Choose a base branch that exists in the repo",
            )
        head = None
        if work_branch is not None:
            head = await self._existing_head(mirror, repo_url, base, work_branch)
        start = await self._start_commit(mirror, repo_url, start_ref) if start_ref else None
        if fork is not None:
            start = fork.commit
        now = utcnow()
        session_id = await self._claim_session_id(repo_url, mirror)
        branch = work_branch or session_branch(session_id)
        if start is not None:
            head = start
            try:  # before the session exists: its sandbox must find the branch there
                await origins.create_branch(self.deps.settings.mirrors_dir, repo_url, branch, start)
            except GitError:
                await store.branches.release(session_id)
                raise
        session = Session(
            id=session_id,
            title=(title or "").strip()[:TITLE_MAX_CHARS] or UNTITLED_SESSION,
            repo_url=repo_url,
            repo_id=registered.id if registered else None,
            base_branch=base,
            branch=branch,
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
            forked_from_id=fork.point.session_id if fork else None,
            forked_from_seq=fork.point.seq if fork else None,
        )
        # The session's row, its owner and its ``session-created``: one transaction.
        created = await self.deps.events.commit(
            Change(
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
                    forked_from=fork.point if fork else None,
                    ts=now,
                ),
                new_session=NewSession(
                    session,
                    idempotency_key,
                    fingerprint,
                    branch_head=head,
                    conversation=fork.conversation if fork else (),
                ),
            )
        )
        if created is None:  # another create under the same key won
            await store.branches.release(session_id)
            assert idempotency_key is not None  # only a keyed create can lose a race
            winner = await self.created_with_key(user, idempotency_key, fingerprint)
            assert winner is not None  # the key's row is what refused this one
            return winner
        last_seq = created.seq
        if start is not None:  # the branch this server made for it, as any push is recorded
            pushed = GitPush(session_id=session_id, sha=start, branch=branch, remote=repo_url)
            last_seq = (await self.deps.events.append(pushed)).seq
        return session.model_copy(update={"last_seq": last_seq})

    async def fork(
        self,
        user: User,
        source: Session,
        at_seq: int,
        *,
        title: str | None = None,
        origin: SessionOrigin = "api",
    ) -> Session:
        """A new session of ``user``'s started from ``source`` at its event ``at_seq``: its
        conversation up to there and its commit there (``sessions/fork.py``). The caller has
        checked that ``user`` may see ``source``; creating a session on its repo is checked
        here, before anything is fetched."""
        store = self.deps.store
        await check_fork_point(store, source, at_seq)
        await self.limits.check_working(user, None)
        registered = await store.repos.find(source.repo_id) if source.repo_id else None
        if self._repo_guard is not None:
            await self._repo_guard(
                user, registered.url if registered else source.repo_url, bool(registered)
            )
        mirror = await self.deps.origins.mirror(self.deps.settings.mirrors_dir, source.repo_url)
        await self.deps.models.loaded()  # the cut reads pydantic-ai's messages
        start = await plan_fork(store, mirror, source, at_seq)
        return await self.create(
            user,
            repo=registered.id if registered else source.repo_url,
            base_branch=source.base_branch,
            model=source.model,
            effort=source.effort,
            title=title or fork_title(source.title, TITLE_MAX_CHARS),
            origin=origin,
            fork=start,
        )

    async def _existing_head(self, mirror: Path, repo_url: str, base: str, branch: str) -> str:
        """The head of the existing ``branch`` a session is to work on."""
        validate_branch(branch)
        if branch == base:
            raise InvalidInput(
                f"A session cannot work on its base branch {base!r}",
                hint="Work on the pull request's head branch, based on its base",
            )
        head = await commit_of(mirror, f"refs/heads/{branch}")
        if head is None:
            raise BranchNotFound(
                f"Branch {branch!r} does not exist in {repo_url}",
                hint="The pull request's branch may have been deleted",
            )
        return head

    async def _start_commit(self, mirror: Path, repo_url: str, ref: str) -> str:
        """The commit a session's own branch is to start at."""
        if not _START_REF.fullmatch(ref):
            raise InvalidInput(
                f"A session starts at a pull request's head (refs/pull/<n>/head), not {ref!r}"
            )
        start = await commit_of(mirror, ref)
        if start is None:
            raise BranchNotFound(
                f"{ref} is not in {repo_url}",
                hint="GitHub keeps a pull request's head there; the fork may be gone",
            )
        return start

    async def created_with_key(
        self, user: User, idempotency_key: str, fingerprint: str | None
    ) -> Session | None:
        """The session ``user`` already created under ``idempotency_key``, if any; raises
        ``IdempotencyKeyReused`` when it was created by a different request."""
        found = await self.deps.store.sessions.by_idempotency_key(user.id, idempotency_key)
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
        branches = self.deps.store.branches
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
        session = await self.deps.store.sessions.get(session_id)
        if session is None:
            raise SessionNotFound(f"No session {session_id!r}", hint=SESSION_NOT_FOUND_HINT)
        return session

    def live_actors(self) -> list[SessionActor]:
        """The actors of this process (each owns its session's sandbox here)."""
        return list(self._actors.values())

    async def discard_vanished(self) -> list[str]:
        """Drop the actors of sessions that no longer exist (drafts deleted by any server's
        sweep), stopping their sandboxes. Returns their ids."""
        gone = set(self._actors) - await self.deps.store.sessions.existing(list(self._actors))
        actors = [(sid, self._actors[sid]) for sid in gone if sid in self._actors]
        for sid, actor in actors:
            actor.closed = True
            await self._drop(sid, actor, release=True)
        await asyncio.gather(*(a.discard() for _, a in actors), return_exceptions=True)
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
        creator = await self.deps.store.users.get(actor.session.creator_id)
        if creator is None:  # the creator was removed: the session is nobody's to run
            raise SessionNotFound(f"No session {actor.session.id!r}")
        return creator

    async def snapshot(self, session_id: str) -> dict[str, Any]:
        """What a joining client needs besides events: the session, who is here, the queue."""
        session = await self.get(session_id)
        queue = await self.deps.store.prompts.unfinished(session_id)
        return {
            "session": session.model_dump(mode="json"),
            "participants": await self.presence.snapshot(session_id),
            "queue": [p.model_dump(mode="json") for p in queue],
        }

    async def close(self) -> None:
        """Stop every actor and free their leases; running prompts stay ``running`` in the
        store and are marked interrupted by whichever replica takes the session next (another
        one's failover pass, or this server's next start)."""
        actors = list(self._actors.values())
        self._actors.clear()
        await asyncio.gather(*(a.close() for a in actors), return_exceptions=True)
        await asyncio.gather(*self._dropping, return_exceptions=True)
        await self.ownership.stop()
