"""Sign-in routes: GitHub's web flow for browsers, its device flow for the CLI, the list of
enabled methods, and sign-out. The logic lives in ``people/``; these only speak HTTP.

The web flow ends with a redirect to ``/auth/complete#token=…&next=…``: the token travels in the
URL *fragment*, which browsers never send to a server (so it is in no access log) and the app at
``/auth/complete`` reads and removes. Failures redirect to ``/signin?error=<code>``, or answer the
JSON error envelope when the request asks for ``application/json``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse, RedirectResponse

from openinspect.api.deps import CurrentUser, State, public_base_url
from openinspect.api.errors import documented, envelope
from openinspect.api.people_schemas import (
    DeviceStart,
    DeviceTokenRequest,
    LoginLinkRedeem,
    Provider,
    Providers,
    SignedIn,
    UserOut,
)
from openinspect.api.routes import people
from openinspect.errors import AuthError, OpenInspectError, ScmError
from openinspect.people.oauth_state import STATE_TTL_S
from openinspect.scm.base import DevicePoll
from openinspect.scm.user_tokens import PROVIDER

NONCE_COOKIE = "oi_oauth_nonce"
COOKIE_PATH = "/auth"
CALLBACK_PATH = "/auth/github/callback"
COMPLETE_PATH = "/auth/complete"
SIGNIN_PAGE = "/signin"
STATE_INVALID = "oauth_state_invalid"
OAUTH_DENIED = "oauth_denied"
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

router = APIRouter(tags=["auth"])
router.include_router(people.router)
# Answers of routes that talk to GitHub: not configured here (404), rate limited, GitHub failing.
_GITHUB = (404, 429, 502, 503)


def _base_url(request: Request, state: State) -> str:
    return public_base_url(request)


def _redirect_uri(request: Request, state: State) -> str:
    return _base_url(request, state) + CALLBACK_PATH


@router.get("/auth/providers")
async def providers(state: State) -> Providers:
    """The sign-in methods this server offers (for the web app's sign-in page)."""
    enabled = state.people.signin_enabled
    github = Provider(
        id="github",
        name="GitHub",
        login_url="/auth/github/login",
        device_url="/auth/github/device",
    )
    return Providers(providers=[github] if enabled else [])


@router.get(
    "/auth/github/login",
    status_code=status.HTTP_302_FOUND,
    response_class=Response,
    responses=documented(404, 422),
)
async def github_login(
    request: Request,
    state: State,
    next_path: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
) -> Response:
    """Start signing in: redirect to GitHub, with a state bound to this browser by a cookie."""
    people_ = state.people
    signin = people_.signin
    minted = people_.oauth_state.mint(next_path)
    response = RedirectResponse(
        signin.authorize_url(minted.state, _redirect_uri(request, state)),
        status_code=status.HTTP_302_FOUND,
        headers=_NO_STORE,
    )
    response.set_cookie(
        NONCE_COOKIE,
        minted.nonce,
        max_age=STATE_TTL_S,
        path=COOKIE_PATH,
        secure=_base_url(request, state).startswith("https:"),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(
    CALLBACK_PATH,
    status_code=status.HTTP_302_FOUND,
    response_class=Response,
    responses=documented(401, 403, 422, *_GITHUB),
)
async def github_callback(
    request: Request,
    state: State,
    code: Annotated[str | None, Query(max_length=512)] = None,
    oauth_state: Annotated[str | None, Query(alias="state", max_length=4096)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """GitHub sends the browser back here: check the state, sign in, hand the token to the
    web app in the URL fragment."""
    people_ = state.people
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        signin = people_.signin
        try:
            next_path = people_.oauth_state.verify(oauth_state, request.cookies.get(NONCE_COOKIE))
        except AuthError as exc:
            return _refused(STATE_INVALID, exc, wants_json)
        if error or not code:
            denied = AuthError(
                f"GitHub did not sign you in ({error or 'no code'})",
                hint="Try again, and approve the request on GitHub",
            )
            return _refused(OAUTH_DENIED, denied, wants_json)
        result = await signin.complete_web(code, _redirect_uri(request, state))
    except OpenInspectError as exc:
        return _refused(exc.code, exc, wants_json)
    fragment = urlencode({"token": result.token, "next": next_path})
    response = RedirectResponse(
        f"{COMPLETE_PATH}#{fragment}", status_code=status.HTTP_302_FOUND, headers=_NO_STORE
    )
    response.delete_cookie(NONCE_COOKIE, path=COOKIE_PATH)
    return response


def _refused(code: str, exc: OpenInspectError, wants_json: bool) -> Response:
    response: Response
    if wants_json:
        status_code = 401 if code == STATE_INVALID else exc.status
        response = JSONResponse(
            envelope(code, exc.message, exc.hint), status_code=status_code, headers=_NO_STORE
        )
    else:
        response = RedirectResponse(
            f"{SIGNIN_PAGE}?{urlencode({'error': code})}",
            status_code=status.HTTP_302_FOUND,
            headers=_NO_STORE,
        )
    response.delete_cookie(NONCE_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/auth/github/device", responses=documented(*_GITHUB))
async def device_start(state: State) -> DeviceStart:
    """Start a device sign-in (for ``openinspect login``): show ``user_code`` to the person,
    who enters it at ``verification_uri``; then poll ``/auth/github/device/token``."""
    code = await state.people.signin.start_device()
    return DeviceStart(
        device_code=code.device_code,
        user_code=code.user_code,
        verification_uri=code.verification_uri,
        interval_s=code.interval_s,
        expires_in_s=code.expires_in_s,
    )


@router.post(
    "/auth/github/device/token",
    response_model=SignedIn,
    responses=documented(403, 410, 413, 422, 428, *_GITHUB),
)
async def device_token(body: DeviceTokenRequest, state: State) -> SignedIn | JSONResponse:
    """Poll a device sign-in: 200 with a ``cli`` token once approved (and admitted); 428
    ``authorization_pending`` until then; 429 ``slow_down`` (poll less often); 410 ``expired``;
    403 ``access_denied`` or ``sign_in_refused``; 422 ``sign_in_code_invalid`` for a device code
    GitHub does not know; 404 ``not_configured`` without GitHub sign-in."""
    result = await state.people.signin.poll_device(body.device_code, body.name)
    if isinstance(result, DevicePoll):
        return _device_wait(result)
    return SignedIn(token=result.token, user=UserOut.of(result.user, result.identity))


def _device_wait(poll: DevicePoll) -> JSONResponse:
    answers = {
        "pending": (428, "authorization_pending", "Waiting for the code to be entered on GitHub"),
        "slow_down": (429, "slow_down", "Polling too often"),
        "expired": (410, "expired", "The device code expired"),
        "denied": (403, "access_denied", "The sign-in was refused on GitHub"),
    }
    status_code, code, message = answers.get(
        poll.status, (502, ScmError.code, f"Unexpected device flow answer {poll.status!r}")
    )
    headers = dict(_NO_STORE)
    hint = None
    if poll.status == "slow_down" and poll.interval_s:
        headers["Retry-After"] = str(int(poll.interval_s))
        hint = f"Poll every {poll.interval_s:g} s"
    elif poll.status == "expired":
        hint = "Start again (POST /auth/github/device)"
    return JSONResponse(envelope(code, message, hint), status_code=status_code, headers=headers)


@router.post(
    "/auth/login-link", response_model=SignedIn, responses=documented(401, 410, 413, 422, 429)
)
async def redeem_login_link(body: LoginLinkRedeem, request: Request, state: State) -> Response:
    """Use a sign-in link's code (from ``/auth/link#code=…``) once: a ``web`` token of its
    person. 401 ``login_link_invalid``, 410 ``login_link_used`` / ``login_link_expired``, 429
    ``sign_in_rate_limited`` after repeated failures."""
    client = request.client.host if request.client else "unknown"
    signed = await state.people.links.redeem(body.code, client)
    identity = await state.store.identities.get(signed.user.id, PROVIDER)
    out = SignedIn(token=signed.token, user=UserOut.of(signed.user, identity))
    return JSONResponse(out.model_dump(mode="json"), headers=_NO_STORE)


@router.post("/auth/web-token", response_model=SignedIn, responses=documented(401))
async def web_token(request: Request, user: CurrentUser, state: State) -> Response:
    """Exchange the token of this request (say, the admin token pasted into the sign-in page)
    for a browser sign-in of the same user that expires after ``auth.web_token_ttl_s``, so the
    browser never keeps a long-lived token. A ``web`` token is replaced (revoked)."""
    links = state.people.links
    signed = await links.exchange(user, request.state.token_id, request.state.token_kind)
    identity = await state.store.identities.get(user.id, PROVIDER)
    out = SignedIn(token=signed.token, user=UserOut.of(user, identity))
    return JSONResponse(out.model_dump(mode="json"), headers=_NO_STORE)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=documented(401))
async def logout(request: Request, user: CurrentUser, state: State) -> None:
    """Revoke the token this request was made with."""
    await state.store.users.revoke_token(request.state.token_id)
