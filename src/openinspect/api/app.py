"""The app factory and its lifespan. Nothing happens at import.

``create_app(settings)`` returns the public API (REST + client WebSocket) and the web app at
``/``. The sandbox bridge is a second, tiny app (``create_bridge_app``) served only on the Unix
socket that sandboxes can reach, so a sandbox can never call the public API, and the public port
never accepts a sandbox.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, WebSocket
from starlette.applications import Starlette
from starlette.routing import BaseRoute, WebSocketRoute

from openinspect import __version__
from openinspect.agent.models import ModelRegistry
from openinspect.api import ws
from openinspect.api.auth import Bootstrap, WsTokens, bootstrap_admin, load_or_create_secret
from openinspect.api.deps import AppState
from openinspect.api.errors import document_common_answers, install_error_handlers
from openinspect.api.limits import BodySizeLimit
from openinspect.api.methods import MethodNotAllowed
from openinspect.api.routes import auth, meta, repos, sessions, webhooks
from openinspect.api.web import mount_web
from openinspect.bus import Bus, open_bus
from openinspect.people.service import People
from openinspect.sandboxes.bridge import BridgeHub
from openinspect.sandboxes.pacing import BridgeLimits
from openinspect.sandboxes.registry import resolve_provider
from openinspect.scm.gitproxy import GitProxyAuthority, git_proxy_routes
from openinspect.services.base import ServiceRunner
from openinspect.services.registry import ServiceContext, build_services
from openinspect.sessions.actor import Services
from openinspect.sessions.commands import CommandHandler
from openinspect.sessions.eventlog import EventLog
from openinspect.sessions.git_authority import SessionGitAuthority
from openinspect.sessions.manager import SessionManager
from openinspect.sessions.origins import Origins
from openinspect.sessions.pulls import PullRequests
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.store.crypto import Sealer

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything the lifespan opened; closed in reverse order."""

    settings: Settings
    store: Store
    bus: Bus
    manager: SessionManager
    hub: BridgeHub
    bootstrap: Bootstrap
    people: People
    git_authority: SessionGitAuthority
    origins: Origins
    services: ServiceRunner
    commands: CommandHandler

    async def warm_up(self) -> None:
        """What the server loads once it listens rather than before: the model clients of the
        providers it can use (seconds of imports). Nothing waits for it; a prompt that comes
        first imports what it needs itself."""
        await self.manager.services.models.loaded()


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    home = settings.home_dir
    home.mkdir(parents=True, exist_ok=True)
    sealer = Sealer.from_settings(settings.auth.encryption_key, home)
    store = await Store.open(settings.resolved_database_url, sealer=sealer)
    bus = open_bus(settings.bus_url)
    models = ModelRegistry(settings)  # its clients load after the server listens (``warm_up``)
    hub = BridgeHub(
        heartbeat_timeout_s=settings.sandbox.heartbeat_timeout_s,
        limits=BridgeLimits.from_settings(settings.sandbox),
    )
    people: People | None = None
    origins: Origins | None = None
    manager: SessionManager | None = None
    runner: ServiceRunner | None = None
    commands: CommandHandler | None = None
    try:
        people = People.open(settings, store, load_or_create_secret(home))
        origins = Origins(people.github, settings.github.web_url)
        events = EventLog(store, bus)
        provider = resolve_provider(settings.sandbox.provider, settings)
        pulls = PullRequests(
            store=store,
            events=events,
            github=people.github,
            user_tokens=people.user_tokens,
            web_url=settings.github.web_url,
        )
        services = Services(
            settings=settings,
            store=store,
            events=events,
            models=models,
            hub=hub,
            provider=provider,
            origins=origins,
            pulls=pulls,
        )
        manager = SessionManager(services)
        manager.repo_guard = people.repo_policy
        authority = SessionGitAuthority(
            store=store,
            events=events,
            hub=hub,
            origins=origins,
            running_prompt=manager.running_prompt,
        )
        bootstrap = await bootstrap_admin(store, home)
        commands = CommandHandler(manager, bus)
        await commands.forwarder.start()  # before it owns a session others forward to
        log.info("replica %s", manager.replica_id)
        # A start-up step, not a service: it must finish before this server takes prompts.
        await manager.recover()
        runner = ServiceRunner(
            build_services(ServiceContext(settings, store, manager)),
            store.leases,
            lease_ttl_s=settings.services.lease_ttl_s,
            backoff_max_s=settings.services.backoff_max_s,
        )
        runner.start()
        yield Runtime(
            settings,
            store,
            bus,
            manager,
            hub,
            bootstrap,
            people,
            authority,
            origins,
            runner,
            commands,
        )
    finally:
        if runner is not None:
            await runner.stop()
        if commands is not None:
            await commands.forwarder.stop()
        # Also when the server is interrupted (uvicorn re-raises SIGINT, which cancels us
        # here): closing destroys the boxes, which unmounts their workspace images.
        if manager is not None:
            await manager.close()
        if origins is not None:
            await origins.aclose()
        if people is not None:
            await people.aclose()
        models.close()
        await bus.close()
        await store.close()


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """The public API. With ``runtime`` given (the server shares one with the bridge app), the
    app uses it; otherwise its lifespan opens its own."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            _attach(app, runtime)
            yield
            return
        async with open_runtime(settings) as opened:
            _attach(app, opened)
            yield

    app = FastAPI(
        title="openinspect",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.add_middleware(BodySizeLimit, path_limits={"/webhooks/": settings.github.webhook_max_bytes})
    app.add_middleware(MethodNotAllowed, api=app)  # outermost: before a body is even read
    install_error_handlers(app)
    document_common_answers(app)
    app.include_router(meta.router)
    app.include_router(sessions.router)
    app.include_router(repos.router)
    app.include_router(ws.router)
    app.include_router(auth.router)
    app.include_router(webhooks.router)
    mount_web(app)  # last: the API's routes win over the app's history-API fallback
    return app


def _attach(app: Starlette, runtime: Runtime) -> None:
    secret = load_or_create_secret(runtime.settings.home_dir)
    app.state.openinspect = AppState(
        manager=runtime.manager,
        store=runtime.store,
        ws_tokens=WsTokens(secret, runtime.settings.sessions.ws_token_ttl_s),
        people=runtime.people,
        settings=runtime.settings,
        pulls=runtime.manager.services.pulls,
        commands=runtime.commands,
    )
    app.state.runtime = runtime


def create_bridge_app(hub: BridgeHub, git_authority: GitProxyAuthority | None = None) -> Starlette:
    """The app behind the Unix socket: the sandbox bridge and the git proxy, nothing else."""

    async def bridge(websocket: WebSocket) -> None:
        await hub.handle(websocket, websocket.headers)

    routes: list[BaseRoute] = [WebSocketRoute("/sandbox/bridge", bridge)]
    if git_authority is not None:
        routes.extend(git_proxy_routes(git_authority))
    return Starlette(routes=routes)
