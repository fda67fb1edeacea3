"""The Linear agent's doors.

- ``GET /integrations/linear/install`` (admins only): Linear's authorize URL with a signed,
  one-time, expiring ``state`` — a redirect, or ``{url, expires_at}`` for a caller that asks
  for JSON (the web app, which cannot send its token on a navigation).
- ``GET /integrations/linear/callback``: where Linear sends the browser back; the install is
  completed (``integrations.linear.install``) and a short page says how it went (JSON when
  asked for). Failures carry a stable code and a hint; never a token.
- ``POST /webhooks/linear``: signed by Linear (``verify``: 401 otherwise), capped at
  ``linear.event_max_bytes`` by the body-size middleware (413), and answered once the delivery
  is in the inbox (``integrations.linear.inbound``).

With Linear off every door is 404 ``not_configured``.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel

from openinspect.api.deps import AdminUser, State, public_base_url
from openinspect.api.errors import documented, envelope
from openinspect.controlplane import ControlPlane
from openinspect.errors import NotConfigured, OpenInspectError, UnsupportedMediaType

if TYPE_CHECKING:
    from openinspect.integrations.linear.app import LinearApp

router = APIRouter(tags=["linear"])
CALLBACK_PATH = "/integrations/linear/callback"
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class LinearInstallStart(BaseModel):
    url: str
    """Linear's authorize page: open it in the browser of the person installing."""
    expires_at: int
    """Unix seconds after which the install must be started again."""


class LinearInstalled(BaseModel):
    ok: bool = True
    org_id: str
    org_name: str


class LinearAck(BaseModel):
    ok: bool = True
    outcome: Literal["accepted", "ignored"]
    """``accepted``: stored and handled in the background; ``ignored``: a repeat, another
    event type, or a workspace the agent is not installed in."""


def _linear(state: ControlPlane) -> LinearApp:
    if state.linear is None:
        raise NotConfigured(
            "The Linear agent is not configured on this server",
            hint="An admin sets OPENINSPECT_LINEAR__CLIENT_ID, OPENINSPECT_LINEAR__CLIENT_SECRET "
            "and OPENINSPECT_LINEAR__WEBHOOK_SECRET",
        )
    return state.linear


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


@router.get(
    "/integrations/linear/install",
    response_class=Response,
    responses={
        200: {"model": LinearInstallStart, "description": "The authorize URL (Accept: JSON)"},
        302: {"description": "A redirect to Linear's authorize page"},
        **documented(403, 404),
    },
)
async def linear_install(request: Request, admin: AdminUser, state: State) -> Response:
    """Start installing the agent in a Linear workspace (admins only)."""
    linear = _linear(state)
    started = linear.installer.start(admin, public_base_url(request) + CALLBACK_PATH)
    if _wants_json(request):
        body = LinearInstallStart(url=started.url, expires_at=started.expires_at)
        return JSONResponse(body.model_dump(), headers=_NO_STORE)
    return RedirectResponse(started.url, status_code=status.HTTP_302_FOUND, headers=_NO_STORE)


_HTML = {"text/html": {"schema": {"type": "string"}}}
_PAGE_OR_JSON: dict[int | str, dict[str, Any]] = {
    200: {"model": LinearInstalled, "description": "Installed (a page, or JSON)", "content": _HTML},
    **{
        code: {**answer, "content": _HTML}
        for code, answer in documented(401, 403, 404, 429, 500, 502, 503).items()
    },
}


@router.get(
    CALLBACK_PATH,
    response_class=Response,
    responses=_PAGE_OR_JSON,
)
async def linear_callback(
    request: Request,
    state: State,
    code: Annotated[str | None, Query(max_length=512)] = None,
    oauth_state: Annotated[str | None, Query(alias="state", max_length=4096)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Linear sends the browser back here after the install was approved (or not)."""
    wants_json = _wants_json(request)
    try:
        linear = _linear(state)
        info = await linear.installer.complete(
            code=code,
            state=oauth_state,
            error=error,
            redirect_uri=public_base_url(request) + CALLBACK_PATH,
        )
    except OpenInspectError as exc:
        if wants_json:
            return JSONResponse(
                envelope(exc.code, exc.message, exc.hint), exc.status, headers=_NO_STORE
            )
        return _page("The Linear app was not installed", exc.message, exc.hint, exc.status)
    if wants_json:
        done = LinearInstalled(org_id=info.org_id, org_name=info.org_name)
        return JSONResponse(done.model_dump(), headers=_NO_STORE)
    return _page(
        "Linear is connected",
        f"The agent is installed in the workspace {info.org_name}. Delegate an issue to it, or "
        "mention it in a comment, to start a session.",
        None,
        200,
    )


def _page(title: str, message: str, hint: str | None, status_code: int) -> HTMLResponse:
    hint_html = f"<p>{escape(hint)}</p>" if hint else ""
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"</head><body><h1>{escape(title)}</h1><p>{escape(message)}</p>{hint_html}"
        "</body></html>",
        status_code=status_code,
        headers=_NO_STORE,
    )


_FROM_LINEAR: dict[int | str, dict[str, Any]] = documented(400, 401, 404, 413, 415)


@router.post("/webhooks/linear", responses=_FROM_LINEAR)
async def linear_webhook(request: Request, state: State) -> LinearAck:
    """An ``AgentSessionEvent`` delivery, signed by Linear."""
    from openinspect.integrations.linear.verify import delivery_id, parse, verify

    linear = _linear(state)
    body = await request.body()  # capped by the body-size middleware (/webhooks/linear)
    verify(state.settings.linear, request.headers, body)
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType(
            "Linear sends this as application/json", hint="This URL takes only Linear's requests"
        )
    delivery = delivery_id(request.headers)
    event = parse(body)
    if event is None or not await linear.inbound.accept(event, body, delivery):
        return LinearAck(outcome="ignored")
    return LinearAck(outcome="accepted")
