"""The session engine's side of the git proxy: who a request is, where it goes, what it may push.

A request carries the sandbox token its box's forwarder adds. It must belong to a live sandbox of
the session named in the path, and the path's repo must be that session's; then the proxy
forwards to the session's origin with credentials the sandbox never sees, under the session's
push policy (built from the branch claims in the store: see ``store.branches``). A session given
an existing branch (``Session.works_on_existing_branch``: a pull request's head) may only
fast-forward that one branch, checked on the repo's mirror (``scm.fast_forward``). Every push
attempt becomes events: a ``git-push`` per ref that landed, a ``warning`` (``push_refused``) for
one that did not, written under the session owner's lease (its fence) when the session is
live here: a replica that lost the session records nothing (the new owner's recovery reads the
origin and records what landed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from openinspect.domain.events import Event, GitPush, WarningEvent
from openinspect.errors import AuthError, ForbiddenError, LeaseLost, NotFoundError
from openinspect.sandboxes.bridge import BridgeHub
from openinspect.scm.fast_forward import MirrorAncestry
from openinspect.scm.gitproxy import ProxyGrant
from openinspect.scm.push_rules import NAME_SEPARATOR, PushPolicy, RefUpdate
from openinspect.sessions.eventlog import EventLog
from openinspect.sessions.git import mirror_path
from openinspect.sessions.origins import Origins
from openinspect.store import Store
from openinspect.store.leases import Lease

log = logging.getLogger(__name__)
ZERO_SHA = "0" * 40
FAST_FORWARD_SCRATCH = "tmp"
"""Under the server's home: where fast-forward checks index a push's pack (and drop it)."""


class SessionGitAuthority:
    def __init__(
        self,
        *,
        store: Store,
        events: EventLog,
        hub: BridgeHub,
        origins: Origins,
        running_prompt: Callable[[str], str | None],
        lease_of: Callable[[str], Lease | None] = lambda _: None,
        mirrors_dir: Path | None = None,
    ) -> None:
        """``running_prompt`` and ``lease_of``: the prompt a session runs here and the lease
        this replica owns it by, if it is live here. ``mirrors_dir``: where the repos' mirrors
        are, whose objects a push to a granted branch is checked against."""
        self._mirrors_dir = mirrors_dir
        self._store = store
        self._events = events
        self._hub = hub
        self._origins = origins
        self._running_prompt = running_prompt
        self._lease_of = lease_of

    async def authorize(
        self, session_id: str, owner: str, repo: str, credential: str | None, service: str
    ) -> ProxyGrant:
        if not credential:
            raise AuthError("The git proxy needs the sandbox's token")
        sandbox_id = self._hub.identify(credential)
        # A token sent but wrong is 403, not 401: on 401 git would try to prompt for a password
        # in the box and hide our message.
        if sandbox_id is None:
            raise ForbiddenError("Unknown or expired sandbox token")
        if await self._store.sandboxes.session_of(sandbox_id) != session_id:
            raise ForbiddenError(f"This sandbox does not belong to session {session_id}")
        session = await self._store.sessions.get(session_id)
        if session is None:
            raise NotFoundError(f"No session {session_id}")
        expected = self._origins.slug(session.repo_url)
        if (owner.lower(), repo.lower()) != (expected[0].lower(), expected[1].lower()):
            raise NotFoundError(
                f"{owner}/{repo} is not a repository of this session",
                hint=f"This session works on {expected[0]}/{expected[1]}",
            )
        if session.works_on_existing_branch:  # a pull request's branch: fast-forwards only
            policy = PushPolicy(
                session_branch=session.branch, base_branch=session.base_branch, granted=True
            )
            check = self._fast_forward_check(session.repo_url)  # none: every update refused
            return ProxyGrant(session_id, self._origins.upstream(session.repo_url), policy, check)
        branches = self._store.branches
        # A branch it pushed is the session's only while it holds the name: one that two
        # sessions pushed before claims existed belongs to the first.
        created = await branches.names(session_id) & await branches.claimed(session_id)
        namespace = session.branch + NAME_SEPARATOR
        policy = PushPolicy(
            session_branch=session.branch,
            base_branch=session.base_branch,
            created_branches=created,
            foreign_branches=await branches.claimed_by_others(
                session_id, session.repo_url, session.branch, namespace
            ),
        )
        return ProxyGrant(session_id, self._origins.upstream(session.repo_url), policy)

    def _fast_forward_check(self, repo_url: str) -> MirrorAncestry | None:
        """A fast-forward check on the repo's mirror (fetched first when it asks to)."""
        mirrors = self._mirrors_dir
        if mirrors is None:
            return None

        async def mirror(refresh: bool) -> Path:
            if refresh:
                return await self._origins.mirror(mirrors, repo_url)
            return mirror_path(mirrors, repo_url)

        return MirrorAncestry(mirror, scratch_dir=mirrors.parent / FAST_FORWARD_SCRATCH)

    async def pushed(
        self, grant: ProxyGrant, updates: list[RefUpdate], ok: bool, message: str
    ) -> None:
        sid = grant.session_id
        prompt_id = self._running_prompt(sid)
        if not ok:
            await self._record(
                WarningEvent(
                    session_id=sid,
                    prompt_id=prompt_id,
                    code="push_refused",
                    message=message or "The push was refused",
                )
            )
            return
        session = await self._store.sessions.get(sid)
        remote = session.repo_url if session else ""
        for update in updates:
            branch = update.branch
            if branch is None:
                continue
            # Claimed before it is recorded: a crash in between leaves the name reserved.
            if session is not None:
                await self._store.branches.claim(sid, remote, branch)
            await self._store.branches.record(sid, branch, None if update.is_delete else update.new)
            await self._record(
                GitPush(
                    session_id=sid,
                    prompt_id=prompt_id,
                    sha=ZERO_SHA if update.is_delete else update.new,
                    branch=branch,
                    remote=remote,
                )
            )

    async def _record(self, event: Event) -> None:
        """Append under the owner's fence; a replica that lost the session records nothing."""
        try:
            await self._events.append(event, fence=self._lease_of(event.session_id))
        except LeaseLost:
            log.warning(
                "session %s: a push was not recorded here: another server owns the session",
                event.session_id,
            )
