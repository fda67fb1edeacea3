"""Request dependencies: the control plane, the authenticated user, and role checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from openinspect.controlplane import ControlPlane
from openinspect.domain.commands import ID_MAX
from openinspect.domain.models import User
from openinspect.errors import (
    SESSION_NOT_FOUND_HINT,
    AuthError,
    ForbiddenError,
    SessionNotFound,
    TokenExpired,
    TokenRevoked,
)
from openinspect.people.roles import ensure_can_see, is_admin

_bearer = HTTPBearer(auto_error=False)


def control_plane(request: Request) -> ControlPlane:
    """The control plane the app runs on (``api.app.create_app``)."""
    plane: ControlPlane = request.app.state.control_plane
    return plane


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError(
            "This endpoint needs an API token",
            hint="Send 'Authorization: Bearer <token>' with an API token (the server prints the "
            "admin's when it first starts)",
        )
    users = control_plane(request).store.users
    found = await users.lookup(credentials.credentials)
    if found is None:
        why = await users.token_state(credentials.credentials)
        hint = "Sign in again, or mint a new token"
        if why == "expired":
            raise TokenExpired("Your sign-in (token) has expired", hint=hint)
        if why == "revoked":
            raise TokenRevoked("This token was revoked (signed out)", hint=hint)
        raise AuthError("Unknown API token", hint=hint)
    request.state.token_id = found.token_id
    request.state.token_kind = found.kind
    return found.user


async def optional_user(request: Request) -> User | None:
    """The caller when it sent a valid bearer token, else None: for routes anyone may call that
    tell a signed-in caller more. It reads the header itself, so the route stays documented as
    open (no security scheme)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    found = await control_plane(request).store.users.lookup(token.strip())
    return found.user if found is not None else None


async def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if not is_admin(user):
        raise ForbiddenError("This needs the admin role", hint="Ask an admin of this server")
    return user


async def visible_session(request: Request, user: Annotated[User, Depends(current_user)]) -> None:
    """For routes under ``/api/sessions/{session_id}``: members reach only their sessions."""
    session_id = request.path_params.get("session_id")
    if session_id:
        if len(session_id) > ID_MAX:  # no session has such an id; not a command's to refuse
            raise SessionNotFound("No session has an id that long", hint=SESSION_NOT_FOUND_HINT)
        await ensure_can_see(control_plane(request).store, user, session_id)


def public_base_url(request: Request) -> str:
    """The server's address as people reach it: ``server.public_url``, else the request's."""
    public = control_plane(request).settings.server.public_url
    return (public or str(request.base_url)).rstrip("/")


async def _plane(request: Request) -> ControlPlane:
    # A coroutine, so that FastAPI calls it on the loop, not in its thread pool (a thread hop
    # per request, and the pool's start-up cost on the first one).
    return control_plane(request)


State = Annotated[ControlPlane, Depends(_plane)]
CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(admin_user)]
MaybeUser = Annotated[User | None, Depends(optional_user)]
