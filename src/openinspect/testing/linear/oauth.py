"""Linear's OAuth 2: ``GET /oauth/authorize``, ``POST /oauth/token`` and ``POST /oauth/revoke``.

- Authorize (``client_id``, ``redirect_uri``, ``response_type=code``, ``scope`` comma-separated,
  ``state``, ``actor=user|app``): an unknown client or a redirect URI that is not allowed gets a
  400 and no redirect (RFC 6749 §4.1.2.1); any other problem redirects back with ``error``
  (``unsupported_response_type``, ``invalid_scope``, ``invalid_request``) and ``state``. The fake
  approves at once, as the installer set with ``FakeLinear.set_installer`` (the default admin of
  the default organization), or refuses with ``error=access_denied`` when told to.
  ``app:assignable``/``app:mentionable`` need ``actor=app``.
- Token (form-encoded; client credentials in the form or HTTP Basic): ``authorization_code``
  (codes are one-time and live ``code_ttl_s``; a code used twice is refused and the tokens it gave
  are revoked), ``refresh_token`` (rotates: the old refresh token stops working) and
  ``client_credentials`` (an app token, no refresh token). Answers ``{access_token, token_type:
  "Bearer", expires_in, scope: "read write", refresh_token}``; errors are
  ``{error, error_description}`` with 400 (401 for ``invalid_client``).
- An ``actor=app`` token acts as the organization's app user (``viewer`` is the app);
  ``actor=user`` as the person who installed.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from openinspect.testing.linear.http import TooLarge, basic_credentials, parse_form, read_body
from openinspect.testing.linear.records import Grant, Token
from openinspect.testing.linear.state import LinearState

SCOPES = frozenset(
    {
        "read",
        "write",
        "issues:create",
        "comments:create",
        "timeSchedule:write",
        "admin",
        "app:assignable",
        "app:mentionable",
    }
)
APP_SCOPES = frozenset({"app:assignable", "app:mentionable"})
DEFAULT_SCOPES = ("read", "write", "app:assignable", "app:mentionable")
TOKEN_TTL_S = 86_399
CLIENT_CREDENTIALS_TTL_S = 2_591_999
CODE_TTL_S = 300.0
MAX_FORM_BYTES = 64 * 1024
MAX_PARAM_CHARS = 2048
ERRORS = {
    "invalid_request": "The request is missing a parameter or has an invalid one.",
    "invalid_client": "Client authentication failed.",
    "invalid_grant": "The grant is invalid, expired, revoked or was issued to another client.",
    "unsupported_grant_type": "The grant type is not supported.",
    "invalid_scope": "The requested scope is invalid or unknown.",
    "unsupported_response_type": "Only response_type=code is supported.",
    "access_denied": "The user denied the request.",
}


@dataclass
class OAuthApp:
    """The OAuth application the fake knows (one, like a real app's client id and secret)."""

    client_id: str
    client_secret: str
    redirect_uris: list[str] | None = None
    """Allowed callback URLs; None allows any http(s) URL (a fake's convenience)."""
    code_ttl_s: float = CODE_TTL_S
    token_ttl_s: float = TOKEN_TTL_S
    installer: tuple[str | None, str | None] = (None, None)
    """(organization id, user id) of whoever approves the next authorize; None: the defaults."""
    refuse: list[bool] = field(default_factory=list)
    """Queued answers for the next authorizes: True refuses (``access_denied``)."""


def scope_list(raw: str) -> list[str]:
    return [s for s in raw.replace(" ", ",").split(",") if s]


def mint(
    state: LinearState,
    *,
    org_id: str,
    user_id: str,
    scopes: list[str],
    actor: Literal["app", "user"],
    client_id: str | None,
    ttl_s: float,
    refresh: bool,
    code: str | None = None,
) -> Token:
    """A new access token (and refresh token) stored in the state."""
    token = Token(
        access_token=f"lin_oauth_{secrets.token_hex(32)}",
        org_id=org_id,
        user_id=user_id,
        scopes=list(scopes),
        actor=actor,
        client_id=client_id,
        expires_at=time.time() + ttl_s,
        refresh_token=f"lin_refresh_{secrets.token_hex(32)}" if refresh else None,
        code=code,
    )
    with state.lock:
        state.tokens[token.access_token] = token
        if token.refresh_token is not None:
            state.refresh_tokens[token.refresh_token] = token.access_token
        state.touch()
    return token


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _error(error: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": ERRORS[error]}, status_code=status)


def _token_answer(token: Token) -> JSONResponse:
    data: dict[str, Any] = {
        "access_token": token.access_token,
        "token_type": "Bearer",
        "expires_in": max(round(token.expires_at - time.time()), 0),
        "scope": " ".join(token.scopes),
    }
    if token.refresh_token is not None:
        data["refresh_token"] = token.refresh_token
    return JSONResponse(data, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


class OAuth:
    def __init__(self, state: LinearState, app: OAuthApp) -> None:
        self.state = state
        self.app = app

    def _redirect_ok(self, uri: str) -> bool:
        if not uri or len(uri) > MAX_PARAM_CHARS:
            return False
        if self.app.redirect_uris is not None:
            return uri in self.app.redirect_uris
        parts = urlsplit(uri)
        return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment

    def _installer(self) -> tuple[str, str]:
        org_id, user_id = self.app.installer
        with self.state.lock:
            org = self.state.org_or_default(org_id)
            user = self.state.users.get(user_id or self.state.identity.admin_user_id)
            if user is None or user.org_id != org.id:
                user = next(u for u in self.state.users.values() if u.org_id == org.id)
            return org.id, user.id

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        if any(len(v) > MAX_PARAM_CHARS for v in params.values()):
            return _error("invalid_request")
        if params.get("client_id") != self.app.client_id:
            return _error("invalid_client")
        redirect_uri = params.get("redirect_uri", "")
        if not self._redirect_ok(redirect_uri):
            return _error("invalid_request")

        def back(**answer: str) -> Response:
            if params.get("state"):
                answer["state"] = params["state"]
            return RedirectResponse(_with_query(redirect_uri, **answer), status_code=302)

        if params.get("response_type") != "code":
            return back(error="unsupported_response_type")
        scopes = scope_list(params.get("scope", ""))
        actor = params.get("actor", "user")
        if actor not in ("user", "app"):
            return back(error="invalid_request")
        if not scopes or not set(scopes) <= SCOPES or (set(scopes) & APP_SCOPES and actor != "app"):
            return back(error="invalid_scope")
        if self.app.refuse and self.app.refuse.pop(0):
            return back(error="access_denied", error_description=ERRORS["access_denied"])
        if "read" not in scopes:
            scopes.insert(0, "read")  # "read … will always be present"
        org_id, user_id = self._installer()
        code = secrets.token_hex(20)
        with self.state.lock:
            self.state.grants[code] = Grant(
                code=code,
                client_id=self.app.client_id,
                redirect_uri=redirect_uri,
                scopes=scopes,
                actor="app" if actor == "app" else "user",
                org_id=org_id,
                user_id=user_id,
                expires_at=time.time() + self.app.code_ttl_s,
            )
            self.state.touch()
        return back(code=code)

    def _client(self, request: Request, form: dict[str, str]) -> bool:
        creds = basic_credentials(request)
        client_id, secret = creds or (form.get("client_id", ""), form.get("client_secret", ""))
        return secrets.compare_digest(client_id, self.app.client_id) and secrets.compare_digest(
            secret, self.app.client_secret
        )

    async def token(self, request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != (
            "application/x-www-form-urlencoded"
        ):
            return _error("invalid_request")
        try:
            form = parse_form(await read_body(request, MAX_FORM_BYTES))
        except TooLarge:
            return _error("invalid_request", 413)
        if form is None or any(len(v) > MAX_PARAM_CHARS for v in form.values()):
            return _error("invalid_request")
        if not self._client(request, form):
            return _error("invalid_client", 401)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange(form)
        if grant_type == "refresh_token":
            return self._refresh(form)
        if grant_type == "client_credentials":
            scopes = scope_list(form.get("scope", ""))
            if not scopes or not set(scopes) <= SCOPES:
                return _error("invalid_scope")
            org_id, _ = self._installer()
            with self.state.lock:
                app_user = self.state.orgs[org_id].app_user_id
            token = mint(
                self.state,
                org_id=org_id,
                user_id=app_user,
                scopes=scopes,
                actor="app",
                client_id=self.app.client_id,
                ttl_s=CLIENT_CREDENTIALS_TTL_S,
                refresh=False,
            )
            return _token_answer(token)
        return _error("unsupported_grant_type")

    def _exchange(self, form: dict[str, str]) -> Response:
        state = self.state
        with state.lock:
            grant = state.grants.get(form.get("code", ""))
            if grant is None or grant.client_id != self.app.client_id:
                return _error("invalid_grant")
            if grant.used:  # a replayed code: refuse it and revoke what it gave (RFC 6749 §4.1.2)
                for tok in state.tokens.values():
                    if tok.code == grant.code:
                        tok.revoked = True
                return _error("invalid_grant")
            grant.used = True
            if grant.expires_at <= time.time() or form.get("redirect_uri") != grant.redirect_uri:
                return _error("invalid_grant")
            user_id = (
                state.orgs[grant.org_id].app_user_id if grant.actor == "app" else grant.user_id
            )
        return self._pair(grant, user_id, grant.code)

    def _refresh(self, form: dict[str, str]) -> Response:
        state = self.state
        with state.lock:
            access = state.refresh_tokens.pop(form.get("refresh_token", ""), None)
            old = state.tokens.get(access or "")
            if old is None or old.revoked or old.client_id != self.app.client_id:
                return _error("invalid_grant")
        return self._pair(old, old.user_id, old.code)

    def _pair(self, source: Grant | Token, user_id: str, code: str | None) -> Response:
        """A new access and refresh token with the grant's (or the old token's) rights."""
        token = mint(
            self.state,
            org_id=source.org_id,
            user_id=user_id,
            scopes=source.scopes,
            actor=source.actor,
            client_id=source.client_id,
            ttl_s=self.app.token_ttl_s,
            refresh=True,
            code=code,
        )
        return _token_answer(token)

    async def revoke(self, request: Request) -> Response:
        try:
            form = parse_form(await read_body(request, MAX_FORM_BYTES)) or {}
        except TooLarge:
            return _error("invalid_request", 413)
        auth = request.headers.get("authorization", "")
        access = (
            auth[7:].strip() if auth.lower().startswith("bearer ") else form.get("access_token")
        )
        with self.state.lock:
            if access is None and form.get("refresh_token"):
                access = self.state.refresh_tokens.pop(form["refresh_token"], None)
            token = self.state.tokens.get(access or "")
            if token is None or token.revoked:
                return _error("invalid_request")
            token.revoked = True
            if token.refresh_token is not None:
                self.state.refresh_tokens.pop(token.refresh_token, None)
            self.state.touch()
        return Response(status_code=200)

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/oauth/revoke", self.revoke, methods=["POST"]),
        ]
