"""Health, the model catalog, and who am I."""

from __future__ import annotations

from fastapi import APIRouter

from openinspect import __version__
from openinspect.api.deps import CurrentUser, State
from openinspect.api.errors import documented
from openinspect.api.people_schemas import UserOut
from openinspect.api.schemas import Health, ModelList, ModelOut

router = APIRouter()


@router.get("/healthz", tags=["meta"])
async def healthz(state: State) -> Health:
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
