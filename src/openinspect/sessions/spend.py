"""A session's spend limits, as its queue sees them (the limits and the ledger: ``store/spend.py``).

The queue asks before it starts a prompt, and the agent run before each model request after the
first. At a limit the queue pauses: the running prompt ends with ``spend_limit`` (its work is
committed as at any end), the queued ones stay queued, and one ``spend-limit-reached`` event says
which limit, what was spent, the limit and how to raise it. The paused queue asks again when woken
(a limit set on any replica wakes every paused session at once, over the bus:
``services.spend``) and every ``agent.spend_recheck_s`` (a lost message, a new UTC day);
when the limit no longer holds, ``spend-limit-lifted`` is written and the queue runs again.

The spend is counted in the database, so every replica sees the same; the pause itself is the
owning replica's state, rebuilt from the limits by the next owner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from openinspect.bus import Bus
from openinspect.domain.events import Event, SpendLimitLifted, SpendLimitReached
from openinspect.errors import LimitExceeded
from openinspect.store import Store
from openinspect.store.spend import LimitHit

if TYPE_CHECKING:
    from openinspect.sessions.actor import SessionActor

LIMIT_CODE = "spend_limit"
SPEND_CHANNEL = "spend-limits"
"""The bus channel a limit change is announced on (``services.spend``)."""


async def limits_changed(bus: Bus, actors: Iterable[SessionActor]) -> None:
    """After a limit changed: wake this server's paused sessions, and tell the others."""
    wake_paused(actors)
    await bus.publish(SPEND_CHANNEL, "changed")


def wake_paused(actors: Iterable[SessionActor]) -> int:
    """Have the queues paused at a spend limit look again (a limit changed); how many."""
    paused = [a for a in actors if a.spend.paused is not None]
    for actor in paused:
        actor.wake()
    return len(paused)


def describe(hit: LimitHit, repo_name: str | None) -> tuple[str, str]:
    """The message and hint of a reached limit: which, spent, the limit, how to raise it."""
    spent = f"${hit.spent_usd:.4f}"
    limit = f"${hit.limit_usd:g}"
    if hit.scope == "user-daily":
        return (
            f"The person who asked has spent {spent} today (UTC); the daily limit is {limit}",
            "An admin raises it with `openinspect limits set user-daily <usd>` (or PUT "
            "/api/limits); it also resets at 00:00 UTC. The queued prompts then run",
        )
    where = {
        "global": ("the limit of every session", "global"),
        "repo": (
            f"the limit of {repo_name or 'this repo'}'s sessions",
            f"repo {repo_name or '<repo>'}",
        ),
        "automation": (f"the limit of automation {hit.key}'s sessions", f"automation {hit.key}"),
    }[hit.scope]
    return (
        f"This session has spent {spent}; {where[0]} is {limit}",
        f"An admin raises it with `openinspect limits set {where[1]} <usd>` (or PUT /api/limits);"
        " the queued prompts then run",
    )


class SpendGate:
    """One session's pause at its spend limits (used by its actor, under its lock or from its
    one running prompt)."""

    def __init__(
        self,
        store: Store,
        session_id: str,
        repo_id: str | None,
        emit: Callable[[Event], Awaitable[Event]],
    ) -> None:
        self._store = store
        self._session_id = session_id
        self._repo_id = repo_id
        self._emit = emit
        self.paused: LimitHit | None = None
        """The limit the queue is paused at (None: not paused)."""

    async def check(self, user_ids: Sequence[str], prompt_id: str | None = None) -> LimitHit | None:
        """The limit reached for prompts of ``user_ids``, announcing a new pause or its end."""
        hit = await self._store.spend.check(self._session_id, user_ids)
        if hit is None:
            if self.paused is not None:
                lifted = SpendLimitLifted(session_id=self._session_id, scope=self.paused.scope)
                self.paused = None
                await self._emit(lifted)
            return None
        if self.paused is None or (self.paused.scope, self.paused.key) != (hit.scope, hit.key):
            self.paused = hit
            message, hint = describe(hit, await self._repo_name())
            await self._emit(
                SpendLimitReached(
                    session_id=self._session_id,
                    prompt_id=prompt_id,
                    scope=hit.scope,
                    key=hit.key,
                    user_id=hit.user_id,
                    spent_usd=round(hit.spent_usd, 6),
                    limit_usd=hit.limit_usd,
                    message=message,
                    hint=hint,
                )
            )
        return hit

    async def for_run(self, user_id: str, prompt_id: str) -> LimitExceeded | None:
        """For the agent run, before a model request: the error ending the prompt at a limit."""
        hit = await self.check([user_id], prompt_id)
        if hit is None:
            return None
        message, hint = describe(hit, await self._repo_name())
        return LimitExceeded(LIMIT_CODE, message, hint=hint)

    async def _repo_name(self) -> str | None:
        if self._repo_id is None:
            return None
        for repo in await self._store.repos.list():
            if repo.id == self._repo_id:
                return repo.name
        return None
