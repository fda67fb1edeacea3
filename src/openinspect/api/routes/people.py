"""Your API tokens and git identity; users, roles and sign-in links (admins)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, status

from openinspect.api.deps import AdminUser, CurrentUser, State, public_base_url
from openinspect.api.errors import documented
from openinspect.api.people_schemas import (
    LoginLinkOut,
    MeUpdate,
    RoleUpdate,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenOut,
    UserCreate,
    UserList,
    UserOut,
)
from openinspect.domain.events import utcnow
from openinspect.errors import NotFoundError
from openinspect.people.roles import is_admin
from openinspect.scm.user_tokens import PROVIDER

router = APIRouter(prefix="/api", responses=documented(401))
_ADMIN = documented(403)


@router.get("/tokens", tags=["tokens"])
async def list_tokens(request: Request, user: CurrentUser, state: State) -> TokenList:
    """Your tokens that are not revoked (expired ones included), newest first."""
    tokens = await state.store.users.tokens(user.id)
    return TokenList(tokens=[TokenOut.of(t, request.state.token_id) for t in tokens])


@router.post(
    "/tokens", tags=["tokens"], status_code=status.HTTP_201_CREATED, responses=documented(413)
)
async def create_token(body: TokenCreate, user: CurrentUser, state: State) -> TokenCreated:
    """Mint an API token for scripts. The token is in this answer only."""
    days = body.expires_in_days
    expires_at = utcnow() + timedelta(days=days) if days else None
    token, record = await state.store.users.mint_token(
        user.id, body.name, kind="api", expires_at=expires_at
    )
    return TokenCreated(token=token, info=TokenOut.of(record))


@router.delete(
    "/tokens/{token_id}",
    tags=["tokens"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=documented(404),
)
async def revoke_token(token_id: str, user: CurrentUser, state: State) -> None:
    """Revoke one of your tokens (admins: anyone's)."""
    record = await state.store.users.get_token(token_id)
    if (
        record is None
        or record.revoked_at is not None
        or (record.user_id != user.id and not is_admin(user))
    ):
        raise NotFoundError(f"No token {token_id!r}", hint="List yours with GET /api/tokens")
    await state.store.users.revoke_token(token_id)


@router.patch("/me", tags=["meta"], responses=documented(413))
async def update_me(body: MeUpdate, user: CurrentUser, state: State) -> UserOut:
    """Change the name and email written into the commits of your prompts."""
    updated = await state.store.users.update_git_identity(
        user.id, git_name=body.git_name, git_email=body.git_email
    )
    return UserOut.of(updated, await state.store.identities.get(user.id, PROVIDER))


@router.get("/users", tags=["users"], responses=_ADMIN)
async def list_users(user: AdminUser, state: State) -> UserList:
    """Every user with their GitHub login (admins only)."""
    identities = await state.store.identities.of_provider(PROVIDER)
    users = await state.store.users.list_all()
    return UserList(users=[UserOut.of(u, identities.get(u.id)) for u in users])


@router.patch("/users/{user_id}", tags=["users"], responses=documented(403, 404, 409, 413))
async def set_role(user_id: str, body: RoleUpdate, user: AdminUser, state: State) -> UserOut:
    """Make a user admin or member (admins only; the last admin stays admin)."""
    updated = await state.store.users.set_role(user_id, body.role)
    return UserOut.of(updated, await state.store.identities.get(user_id, PROVIDER))


@router.post(
    "/users",
    tags=["users"],
    status_code=status.HTTP_201_CREATED,
    responses=documented(403, 409, 413),
)
async def create_user(body: UserCreate, user: AdminUser, state: State) -> UserOut:
    """Add a person (admins only); then mint them a sign-in link. 409 when the email is taken."""
    return UserOut.of(await state.store.users.add(name=body.name, email=body.email, role=body.role))


@router.post(
    "/users/{user_id}/login-links",
    tags=["users"],
    status_code=status.HTTP_201_CREATED,
    responses=documented(403, 404),
)
async def create_login_link(
    user_id: str, request: Request, user: AdminUser, state: State
) -> LoginLinkOut:
    """A one-time sign-in link for a user (admins only): it signs them in to the web app once,
    within ``auth.login_link_ttl_s``. Minting another voids their older unused link."""
    target = await state.store.users.get(user_id)
    if target is None:
        raise NotFoundError(f"No user {user_id!r}", hint="List users with GET /api/users")
    minted = await state.people.links.mint(target, public_base_url(request), user)
    identity = await state.store.identities.get(user_id, PROVIDER)
    return LoginLinkOut(
        url=minted.url, expires_at=minted.expires_at, user=UserOut.of(target, identity)
    )
