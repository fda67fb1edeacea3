"""Request dependencies: the app's services and the authenticated user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from openinspect.api.auth import WsTokens
from openinspect.domain.models import User
from openinspect.errors import AuthError
from openinspect.sessions.manager import SessionManager
from openinspect.store import Store

_bearer = HTTPBearer(auto_error=False)


@dataclass
class AppState:
    manager: SessionManager
    store: Store
    ws_tokens: WsTokens


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.openinspect
    return state


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError(
            "This endpoint needs an API token",
            hint="Send 'Authorization: Bearer <token>' (see `openinspect serve`)",
        )
    user = await app_state(request).store.users.authenticate(credentials.credentials)
    if user is None:
        raise AuthError("Unknown or revoked API token")
    return user


State = Annotated[AppState, Depends(app_state)]
CurrentUser = Annotated[User, Depends(current_user)]
