"""Per-user limits: sessions working at once and sandboxes running at once.

Both are counted in the database, so they hold across replicas sharing it:

- **working sessions** (``sessions.max_active_per_user``): sessions with a queued or running prompt
  by the user. A prompt that would add one more, and a new session while the user is at the limit,
  are refused with ``user_limit_reached`` (429).
- **running sandboxes** (``sandbox.max_running_per_user``): sandboxes warming, booting or ready for
  sessions the user created. Sandboxes stay up between prompts, so at the limit the least recently
  started idle one that lives in this process (no queued or running prompt) is stopped to make
  room; only when none is idle is the prompt refused. A typing hint never evicts anything: it only
  warms a sandbox when there is room.

Admins are not limited: they run the install (and its benchmarks); the limits keep any one member
from taking the host. The checks are not atomic with the queueing that follows (two prompts racing
from one user may both pass); they bound a user's footprint, they are not a billing meter.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa

from openinspect.domain.models import UNFINISHED_PROMPT_STATUSES, User
from openinspect.errors import UserLimitReached
from openinspect.people.roles import is_admin
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.store.tables import prompts, sandboxes, sessions

if TYPE_CHECKING:
    from openinspect.sessions.actor import SessionActor

log = logging.getLogger(__name__)
RUNNING_SANDBOX_STATUSES = ("warming", "booting", "ready")


class UserLimits:
    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store

    async def working_sessions(self, user_id: str, *, besides: str | None = None) -> int:
        """Sessions (other than ``besides``) with a queued or running prompt by the user."""
        query = sa.select(sa.func.count(sa.distinct(prompts.c.session_id))).where(
            prompts.c.author_id == user_id, prompts.c.status.in_(UNFINISHED_PROMPT_STATUSES)
        )
        if besides is not None:
            query = query.where(prompts.c.session_id != besides)
        async with self._store.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def running_sandboxes(self, creator_id: str, *, besides: str | None = None) -> int:
        """Running sandboxes of the sessions ``creator_id`` created (other than ``besides``)."""
        query = (
            sa.select(sa.func.count())
            .select_from(sandboxes.join(sessions, sessions.c.id == sandboxes.c.session_id))
            .where(
                sessions.c.creator_id == creator_id,
                sandboxes.c.status.in_(RUNNING_SANDBOX_STATUSES),
            )
        )
        if besides is not None:
            query = query.where(sandboxes.c.session_id != besides)
        async with self._store.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def check_working(self, user: User, session_id: str | None) -> None:
        """Refuse when the user already has the most sessions working at once."""
        if is_admin(user):
            return
        limit = self._settings.sessions.max_active_per_user
        working = await self.working_sessions(user.id, besides=session_id)
        if working >= limit:
            raise UserLimitReached(
                f"{working} of your sessions are working already; the limit is {limit}",
                hint="Wait for a prompt to finish, or stop or cancel one, then try again",
            )

    async def make_room(
        self, creator: User, actor: SessionActor | None, live: Iterable[SessionActor]
    ) -> None:
        """Make sure ``actor``'s session (or a new one, for None) may run a sandbox; stop an
        idle one of the same creator if needed; refuse when every one is busy."""
        if is_admin(creator):
            return
        if actor is not None and actor.sandbox.status in RUNNING_SANDBOX_STATUSES:
            return
        creator_id = creator.id
        limit = self._settings.sandbox.max_running_per_user
        besides = actor.session.id if actor is not None else None
        running = await self.running_sandboxes(creator_id, besides=besides)
        idle = [a for a in live if a is not actor and _idle(a, creator_id)]
        while running >= limit and idle:
            victim = idle.pop(0)
            log.info("stopping the idle sandbox of %s to make room", victim.session.id)
            await victim.sandbox.destroy()
            running = await self.running_sandboxes(creator_id, besides=besides)
        if running >= limit:
            raise UserLimitReached(
                f"{running} sandboxes of your sessions are running; the limit is {limit}",
                hint="Wait for a prompt in another session to finish, then try again",
            )

    async def has_room(self, creator: User, actor: SessionActor) -> bool:
        """Whether ``actor`` may start a sandbox without stopping anyone's."""
        if is_admin(creator) or actor.sandbox.status in RUNNING_SANDBOX_STATUSES:
            return True
        limit = self._settings.sandbox.max_running_per_user
        return await self.running_sandboxes(creator.id, besides=actor.session.id) < limit


def _idle(actor: SessionActor, creator_id: str) -> bool:
    return (
        actor.session.creator_id == creator_id
        and actor.sandbox.status == "ready"
        and actor.running_prompt_id is None
        and actor.session.status != "active"
    )
