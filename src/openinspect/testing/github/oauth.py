"""OAuth on the web host: the authorize page, the token endpoint (code, refresh and device
grants, with GitHub's HTTP-200-with-``error`` answers) and the device flow's code endpoint.

Who "is signed in" at the authorize page is set by the test (``set_oauth_user``); without one,
the page lists the users to pick from (standalone mode). ``/login/device`` is a small form to
approve a device code as one of the users.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Route

from openinspect.testing.github.core import Core
from openinspect.testing.github.records import UserTokenRec

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP_S = 5.0
ERRORS = {
    "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
    "bad_verification_code": "The code passed is incorrect or expired.",
    "redirect_uri_mismatch": "The redirect_uri MUST match the registered callback URL for this "
    "application.",
    "bad_refresh_token": "The refresh token passed is incorrect or expired.",
    "unsupported_grant_type": "The grant type is not supported.",
    "authorization_pending": "The authorization request is still pending.",
    "slow_down": "Too many requests have been made in the same timeframe.",
    "expired_token": "The device code has expired.",
    "access_denied": "The authorization request was denied.",
    "incorrect_device_code": "The device_code provided is not valid.",
}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}",
        status_code=status,
    )


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _params(request: Request) -> dict[str, str]:
    """Form, JSON or query parameters, as GitHub accepts all three."""
    params = dict(request.query_params)
    raw = await request.body()
    if "json" in request.headers.get("content-type", ""):
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            data = {}
        if isinstance(data, dict):
            params |= {k: str(v) for k, v in data.items()}
    else:
        params |= dict(parse_qsl(raw.decode("utf-8", "replace")))
    return params


def _answer(request: Request, data: dict[str, Any]) -> Response:
    """JSON when asked for it, else the form encoding GitHub defaults to; always HTTP 200."""
    if "json" in request.headers.get("accept", ""):
        return JSONResponse(data)
    return PlainTextResponse(
        urlencode({k: v for k, v in data.items() if v is not None}),
        media_type="application/x-www-form-urlencoded",
    )


def _error(request: Request, error: str, **extra: Any) -> Response:
    return _answer(
        request,
        {
            "error": error,
            "error_description": ERRORS.get(error, error),
            "error_uri": "https://docs.github.com/apps/troubleshooting-oauth-app-access-token-request-errors",
            **extra,
        },
    )


def routes(core: Core) -> list[BaseRoute]:
    state = core.state

    def token_json(rec: UserTokenRec) -> dict[str, Any]:
        now = time.time()
        data: dict[str, Any] = {
            "access_token": rec.token,
            "token_type": "bearer",
            "scope": ",".join(rec.scopes),
        }
        if rec.expires_at is not None and rec.refresh_token is not None:
            data["expires_in"] = round(rec.expires_at - now)
            data["refresh_token"] = rec.refresh_token
            data["refresh_token_expires_in"] = round((rec.refresh_expires_at or now) - now)
        return data

    def give_code(params: dict[str, str], login: str) -> Response:
        redirect_uri = params["redirect_uri"]
        scopes = [s for s in params.get("scope", "").replace(",", " ").split() if s]
        code = state.new_code(login, params["client_id"], redirect_uri, scopes)
        return RedirectResponse(
            _with_query(redirect_uri, code=code, state=params.get("state", "")), status_code=302
        )

    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        if params.get("client_id") != state.app.client_id:
            return _page("Not Found", "<p>No application with this client_id.</p>", 404)
        if not params.get("redirect_uri"):
            return _page("Bad request", "<p>redirect_uri is required by this fake.</p>", 400)
        settings = state.data.settings
        if settings.oauth_deny:
            return RedirectResponse(
                _with_query(
                    params["redirect_uri"],
                    error="access_denied",
                    error_description="The user has denied your application access.",
                    state=params.get("state", ""),
                ),
                status_code=302,
            )
        chosen = params.get("login") or settings.oauth_user
        if chosen:
            if state.user(chosen) is None:
                return _page("Unknown user", f"<p>No user {html.escape(chosen)}.</p>", 404)
            return give_code(params, chosen)
        with state.lock:
            users = [u.login for u in state.data.users.values() if u.type == "User"]
        links = "".join(
            f'<li><a href="{html.escape(_with_query(str(request.url), login=u))}">'
            f"Sign in as {html.escape(u)}</a></li>"
            for u in users
        )
        return _page("Sign in to the fake GitHub", f"<ul>{links}</ul>")

    async def access_token(request: Request) -> Response:
        params = await _params(request)
        app = state.app
        grant = params.get("grant_type", "authorization_code")
        if params.get("client_id") != app.client_id:
            return _error(request, "incorrect_client_credentials")
        if grant == DEVICE_GRANT:
            return device_poll(request, params)
        if params.get("client_secret") != app.client_secret:
            return _error(request, "incorrect_client_credentials")
        if grant == "refresh_token":
            rec = state.refresh_user_token(params.get("refresh_token", ""))
            if rec is None:
                return _error(request, "bad_refresh_token")
            return _answer(request, token_json(rec))
        if grant != "authorization_code":
            return _error(request, "unsupported_grant_type")
        code = state.take_code(params.get("code", ""))
        if code is None:
            return _error(request, "bad_verification_code")
        if params.get("redirect_uri") and params["redirect_uri"] != code.redirect_uri:
            return _error(request, "redirect_uri_mismatch")
        return _answer(request, token_json(state.mint_user_token(code.login, code.scopes)))

    def device_poll(request: Request, params: dict[str, str]) -> Response:
        now = time.time()
        with state.change() as data:
            grant = data.devices.get(params.get("device_code", ""))
            if grant is None or grant.done:
                return _error(request, "incorrect_device_code")
            if grant.expires_at <= now:
                return _error(request, "expired_token")
            if grant.denied:
                grant.done = True
                return _error(request, "access_denied")
            too_soon = (
                grant.last_poll_at is not None and now - grant.last_poll_at < grant.interval_s
            )
            grant.last_poll_at = now
            if too_soon:
                grant.interval_s += SLOW_DOWN_STEP_S
                return _error(request, "slow_down", interval=int(grant.interval_s))
            if grant.login is None:
                return _error(request, "authorization_pending")
            grant.done = True
            login, scopes = grant.login, grant.scopes
        return _answer(request, token_json(state.mint_user_token(login, scopes)))

    async def device_code(request: Request) -> Response:
        params = await _params(request)
        if params.get("client_id") != state.app.client_id:
            return JSONResponse({"error": "Not Found"}, status_code=404)
        scopes = [s for s in params.get("scope", "").replace(",", " ").split() if s]
        grant = state.new_device_grant(params["client_id"], scopes)
        return _answer(
            request,
            {
                "device_code": grant.device_code,
                "user_code": grant.user_code,
                "verification_uri": f"{core.site.web}/login/device",
                "expires_in": int(state.data.settings.device_expires_s),
                "interval": int(grant.interval_s),
            },
        )

    async def device_page(request: Request) -> Response:
        if request.method == "POST":
            params = await _params(request)
            try:
                state.decide_device(params.get("user_code", ""), params.get("login") or None)
            except ValueError as exc:
                return _page("Device sign-in", f"<p>{html.escape(str(exc))}</p>", 404)
            return _page("Device sign-in", "<p>Done. You may close this page.</p>")
        with state.lock:
            users = [u.login for u in state.data.users.values() if u.type == "User"]
        options = "".join(f"<option>{html.escape(u)}</option>" for u in users)
        form = (
            '<form method="post"><input name="user_code" placeholder="ABCD-1234">'
            f'<select name="login">{options}</select><button>Authorize</button></form>'
        )
        return _page("Device sign-in", form)

    return [
        Route("/login/oauth/authorize", authorize, methods=["GET"]),
        Route("/login/oauth/access_token", access_token, methods=["POST"]),
        Route("/login/device/code", device_code, methods=["POST"]),
        Route("/login/device", device_page, methods=["GET", "POST"]),
    ]
