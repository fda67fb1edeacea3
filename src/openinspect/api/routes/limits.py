"""Spend limits over REST (admins): a session's budget globally, per repo and per automation
(the most specific one set applies), and what each person may spend per UTC day.

A change wakes the sessions paused at a limit at once, on every server (over the bus; at the
latest within ``agent.spend_recheck_s``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from openinspect.api.deps import AdminUser, State
from openinspect.api.errors import documented
from openinspect.api.routes.repos import registered_repo
from openinspect.api.schemas import NAME_MAX
from openinspect.errors import AutomationNotFound
from openinspect.sessions.spend import limits_changed
from openinspect.store.spend import ANY, MAX_LIMIT_USD, LimitScope, SpendLimit

router = APIRouter(prefix="/api/limits", tags=["limits"], responses=documented(401, 403))


class LimitView(BaseModel):
    scope: LimitScope
    target: str | None
    """The repo's name or the automation's id; null for ``global`` and ``user-daily``."""
    usd: float
    updated_at: datetime


class LimitList(BaseModel):
    limits: list[LimitView]


class OneLimitSet(BaseModel):
    """Set the limit of every session (``global``) or of each person's day (``user-daily``);
    ``usd`` null removes it."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["global", "user-daily"]
    usd: Annotated[float | None, Field(ge=0, le=MAX_LIMIT_USD, allow_inf_nan=False)]


class TargetLimitSet(BaseModel):
    """Set the limit of a repo's or an automation's sessions; ``usd`` null removes it."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["repo", "automation"]
    target: Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
    """For ``repo``: a registered repo's name or id; for ``automation``: its id."""
    usd: Annotated[float | None, Field(ge=0, le=MAX_LIMIT_USD, allow_inf_nan=False)]


LimitSet = Annotated[OneLimitSet | TargetLimitSet, Field(discriminator="scope")]


async def _listed(state: State) -> LimitList:
    repos = {r.id: r.name for r in await state.store.repos.list()}

    def view(limit: SpendLimit) -> LimitView:
        target = None if limit.key == ANY else repos.get(limit.key, limit.key)
        return LimitView(
            scope=limit.scope, target=target, usd=limit.usd, updated_at=limit.updated_at
        )

    return LimitList(limits=[view(x) for x in await state.store.spend.limits()])


@router.get("")
async def list_limits(user: AdminUser, state: State) -> LimitList:
    """Every spend limit set."""
    return await _listed(state)


@router.put("", responses=documented(404, 422))
async def set_limit(body: LimitSet, user: AdminUser, state: State) -> LimitList:
    """Set or remove one limit; sessions paused at a limit look again."""
    key = ANY
    if isinstance(body, TargetLimitSet) and body.scope == "repo":
        key = (await registered_repo(state, body.target)).id
    elif isinstance(body, TargetLimitSet):
        if await state.store.automations.get(body.target) is None:
            raise AutomationNotFound(
                "No automation has that id", hint="List the automations to see their ids"
            )
        key = body.target
    await state.store.spend.set_limit(body.scope, key, body.usd, by=user.id)
    await limits_changed(state.bus, state.manager.live_actors())
    return await _listed(state)
