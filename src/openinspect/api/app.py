"""The app factory and its lifespan. Nothing happens at import.

``create_app(settings)`` returns the public API (REST + client WebSocket) and the web app at
``/``. The sandbox bridge is a second, tiny app (``create_bridge_app``) served only on the Unix
socket that sandboxes can reach, so a sandbox can never call the public API, and the public port
never accepts a sandbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket
from starlette.applications import Starlette
from starlette.routing import BaseRoute, WebSocketRoute

from openinspect import __version__
from openinspect.api import ws
from openinspect.api.automation_schemas import AUTOMATION_BODY_MAX_BYTES
from openinspect.api.errors import document_common_answers, install_error_handlers
from openinspect.api.limits import BodySizeLimit
from openinspect.api.methods import MethodNotAllowed
from openinspect.api.routes import (
    auth,
    automation_hooks,
    automations,
    egress,
    images,
    limits,
    linear,
    mcp_servers,
    meta,
    pool,
    repos,
    secrets,
    sessions,
    skills,
    slack,
    webhooks,
)
from openinspect.api.web import mount_web
from openinspect.automations.inbound import SENTRY_BODY_MAX, WEBHOOK_BODY_MAX
from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.egress.proxy import EgressProxy
from openinspect.runtime.protocol import EGRESS_PATH
from openinspect.sandboxes.bridge import BridgeHub
from openinspect.scm.gitproxy import GitProxyAuthority, git_proxy_routes
from openinspect.settings import Settings


def create_app(settings: Settings, plane: ControlPlane | None = None) -> FastAPI:
    """The public API. With ``plane`` given (the server shares one with the bridge app; tests
    drive the app in-process on theirs), the app runs on it from the start; otherwise its lifespan
    opens its own."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if plane is not None:
            yield
            return
        async with open_control_plane(settings) as opened:
            app.state.control_plane = opened
            yield

    app = FastAPI(
        title="openinspect",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    body_limits = {  # the first prefix that matches is the cap: the longer ones first
        "/webhooks/automations/": WEBHOOK_BODY_MAX,
        "/webhooks/sentry/": SENTRY_BODY_MAX,
        "/webhooks/linear": settings.linear.event_max_bytes,
        "/webhooks/": settings.github.webhook_max_bytes,
        "/api/automations": AUTOMATION_BODY_MAX_BYTES,
        "/slack/": settings.slack.event_max_bytes,
    }
    app.add_middleware(BodySizeLimit, path_limits=body_limits)
    app.add_middleware(MethodNotAllowed, api=app)  # outermost: before a body is even read
    install_error_handlers(app)
    document_common_answers(app)
    app.include_router(meta.router)
    app.include_router(sessions.router)
    app.include_router(repos.router)
    app.include_router(egress.repos_router)
    app.include_router(images.router)
    app.include_router(egress.sessions_router)
    app.include_router(pool.router)
    app.include_router(secrets.router)
    app.include_router(limits.router)
    app.include_router(skills.router)
    app.include_router(mcp_servers.router)
    app.include_router(ws.router)
    app.include_router(auth.router)
    app.include_router(webhooks.router)
    app.include_router(automations.router)
    app.include_router(automation_hooks.router)
    app.include_router(slack.router)
    app.include_router(linear.router)
    mount_web(app)  # last: the API's routes win over the app's history-API fallback
    if plane is not None:
        app.state.control_plane = plane
    return app


def create_bridge_app(
    hub: BridgeHub,
    git_authority: GitProxyAuthority | None = None,
    egress: EgressProxy | None = None,
) -> Starlette:
    """The app behind the Unix socket: the sandbox bridge, the git proxy and the egress proxy,
    nothing else."""

    async def bridge(websocket: WebSocket) -> None:
        await hub.handle(websocket, websocket.headers)

    routes: list[BaseRoute] = [WebSocketRoute("/sandbox/bridge", bridge)]
    if git_authority is not None:
        routes.extend(git_proxy_routes(git_authority))
    if egress is not None:

        async def egress_tunnel(websocket: WebSocket) -> None:
            await egress.handle(websocket, websocket.headers)

        routes.append(WebSocketRoute(EGRESS_PATH, egress_tunnel))
    return Starlette(routes=routes)
