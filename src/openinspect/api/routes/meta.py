"""Health, the model catalog, and who am I."""

from __future__ import annotations

from fastapi import APIRouter

from openinspect import __version__
from openinspect.api.deps import CurrentUser, MaybeUser, State
from openinspect.api.errors import documented
from openinspect.api.people_schemas import UserOut
from openinspect.api.schemas import Health, ModelList, ModelOut
from openinspect.people.roles import is_admin

router = APIRouter()


@router.get("/healthz", tags=["meta"], response_model_exclude_none=True)
async def healthz(state: State, user: MaybeUser) -> Health:
    """Anyone (a load balancer) learns that the server is up; an admin also learns which
    replica answered and how many sessions are live on it (the replica id names the host and
    the process, which is not for strangers)."""
    if user is None or not is_admin(user):
        return Health(status="ok", version=__version__)
    manager = state.manager
    return Health(
        status="ok",
        version=__version__,
        replica=manager.replica_id,
        live_sessions=len(manager.live_actors()),
    )


@router.get("/api/me", tags=["meta"], responses=documented(401))
async def me(user: CurrentUser, state: State) -> UserOut:
    return UserOut.of(user, await state.store.identities.get(user.id, "github"))


@router.get("/api/models", tags=["meta"], responses=documented(401))
async def models(user: CurrentUser, state: State) -> ModelList:
    registry = state.manager.deps.models
    return ModelList(
        default=registry.default_model(),
        models=[
            ModelOut(
                id=m.id,
                provider=m.provider,
                label=m.label,
                efforts=list(m.efforts),
                default_effort=m.default_effort,
                available=m.available,
            )
            for m in registry.catalog()
        ],
    )
