"""The composition root: every long-lived part of a control-plane process, built in one place.

``open_control_plane(settings)`` builds the parts in dependency order, each from the ones before
it through its constructor (nothing is wired by assignment afterwards), runs crash recovery, starts
the background services and yields the :class:`ControlPlane`. On the way out, or when a step of the
build fails, it closes what it opened in reverse order. The server, the bridge app, the CLI demo
and the tests all open the control plane through here, so there is one object graph to reason
about.

Not to be confused with :mod:`openinspect.runtime`, the program that runs inside a sandbox.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from openinspect.agent.models import ModelRegistry
from openinspect.api.auth import Bootstrap, WsTokens, bootstrap_admin, load_or_create_secret
from openinspect.automations.runs import AutomationEngine
from openinspect.bus import Bus, open_bus
from openinspect.egress.proxy import EgressLimits, EgressProxy
from openinspect.integrations.github import GithubHandler
from openinspect.integrations.outbox import Projection, Sender
from openinspect.people.service import People
from openinspect.sandboxes.base import SandboxProvider
from openinspect.sandboxes.bridge import BridgeHub
from openinspect.sandboxes.pacing import BridgeLimits
from openinspect.sandboxes.registry import resolve_provider
from openinspect.secrets.redact import SecretRedaction
from openinspect.services.base import ServiceRunner
from openinspect.services.registry import ServiceContext, build_services
from openinspect.sessions.actor import SessionDeps
from openinspect.sessions.boxes import BoxMaker
from openinspect.sessions.commands import CommandHandler
from openinspect.sessions.egress_authority import SessionEgressAuthority
from openinspect.sessions.eventlog import EventLog
from openinspect.sessions.git_authority import SessionGitAuthority
from openinspect.sessions.manager import SessionManager
from openinspect.sessions.origins import Origins
from openinspect.sessions.pool import WarmPool
from openinspect.sessions.pulls import PullRequests
from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.store.crypto import Sealer

if TYPE_CHECKING:  # slack_sdk and aiohttp load only on a server with Slack on
    from openinspect.integrations.github.inbox import GithubInbox
    from openinspect.integrations.linear.app import LinearApp
    from openinspect.integrations.slack.inbound import SlackInbound

log = logging.getLogger(__name__)


def bot_is_on(settings: Settings) -> bool:
    """The GitHub bot runs with the App and the webhook secret configured, unless turned off."""
    github = settings.github
    return github.bot.enabled and github.app_configured and github.webhook_secret is not None


@dataclass(frozen=True)
class ControlPlane:
    """Everything one control-plane process runs on; the API's request state is this object."""

    settings: Settings
    store: Store
    bus: Bus
    events: EventLog
    redaction: SecretRedaction
    """The secret values of the sessions here, kept out of events and the log."""
    models: ModelRegistry
    hub: BridgeHub
    people: People
    origins: Origins
    pulls: PullRequests
    session_deps: SessionDeps
    """What every session actor shares (a subset of the above, plus the sandbox provider)."""
    manager: SessionManager
    commands: CommandHandler
    """The one entry point of every change a door asks of a session (``sessions.commands``)."""
    git_authority: SessionGitAuthority
    bootstrap: Bootstrap
    ws_tokens: WsTokens
    services: ServiceRunner
    automations: AutomationEngine
    """Automations' firings, runs and outcomes (``automations.runs``)."""
    slack_inbound: SlackInbound | None = None
    """The Slack app's inbound side (``integrations.slack.inbound``); None with Slack off."""
    github_handlers: Sequence[GithubHandler] = ()
    """What else ``/webhooks/github`` hands a verified delivery to (the review bot's doors)."""
    outbox_senders: Mapping[str, Sender] = field(default_factory=dict)
    """The outbox's senders by source (``integrations.outbox``): the integrations configured."""
    github_inbox: GithubInbox | None = None
    """The GitHub bot's stored deliveries (``integrations.github.inbox``); None with it off."""
    linear: LinearApp | None = None
    """The Linear agent (``integrations.linear``); None with Linear off."""
    egress: EgressProxy | None = None
    """The boxes' egress proxy (``egress.proxy``, on the bridge); None with egress off."""

    async def warm_up(self) -> None:
        """What the server loads once it listens rather than before: the model clients of the
        providers it can use (seconds of imports). Nothing waits for it; a prompt that comes
        first imports what it needs itself."""
        await self.models.loaded()


@asynccontextmanager
async def open_control_plane(
    settings: Settings, *, provider: SandboxProvider | None = None
) -> AsyncIterator[ControlPlane]:
    """Build the control plane, yield it, and close it in reverse order of opening.

    ``provider``: the sandbox backend to use instead of the one the settings name (a test's
    in-process or recording backend), taken as it is given."""
    home = settings.home_dir
    home.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as opened:
        sealer = Sealer.from_settings(settings.auth.encryption_key, home)
        store = await Store.open(settings.resolved_database_url, sealer=sealer)
        opened.push_async_callback(store.close)
        bus = open_bus(settings.bus_url)
        opened.push_async_callback(bus.close)
        models = ModelRegistry(settings)  # its clients load after the server listens (warm_up)
        opened.callback(models.close)
        hub = BridgeHub(
            heartbeat_timeout_s=settings.sandbox.heartbeat_timeout_s,
            limits=BridgeLimits.from_settings(settings.sandbox),
        )
        secret = load_or_create_secret(home)
        people = People.open(settings, store, secret)
        opened.push_async_callback(people.aclose)
        origins = Origins(people.github, settings.github.web_url)
        opened.push_async_callback(origins.aclose)
        redaction = SecretRedaction(store)  # every event, and the log, without secret values
        opened.callback(redaction.close)
        events = EventLog(store, bus, redaction=redaction)
        pulls = PullRequests(
            store=store,
            events=events,
            github=people.github,
            user_tokens=people.user_tokens,
            web_url=settings.github.web_url,
        )
        provider = provider or resolve_provider(settings.sandbox.provider, settings)
        maker = BoxMaker(
            settings=settings, store=store, origins=origins, hub=hub, provider=provider
        )
        pool = WarmPool(maker)  # its boxes are made by the warm_pool service
        # After the manager's close (the exit stack runs backwards): no session claims then.
        opened.push_async_callback(pool.close)
        session_deps = SessionDeps(
            settings=settings,
            store=store,
            events=events,
            models=models,
            hub=hub,
            provider=provider,
            origins=origins,
            pulls=pulls,
            redaction=redaction,
            pool=pool,
            maker=maker,
        )
        manager = SessionManager(session_deps, repo_guard=people.repo_policy)
        # Also when the server is interrupted (uvicorn re-raises SIGINT, which cancels us here):
        # closing destroys the boxes, which unmounts their workspace images.
        opened.push_async_callback(manager.close)
        git_authority = SessionGitAuthority(
            store=store,
            events=events,
            hub=hub,
            origins=origins,
            running_prompt=manager.running_prompt,
            lease_of=manager.lease_of,
            mirrors_dir=settings.mirrors_dir,
        )
        egress = None
        if settings.sandbox.egress.enabled:
            egress = EgressProxy(
                SessionEgressAuthority(
                    store=store,
                    events=events,
                    hub=hub,
                    allow=settings.sandbox.egress.allow,
                    lease_of=manager.lease_of,
                    pool_repo_of=pool.repo_of,
                ),
                EgressLimits.from_settings(settings.sandbox.egress),
            )
        bootstrap = await bootstrap_admin(store, home)
        commands = CommandHandler(manager, bus)
        await commands.forwarder.start()  # before it owns a session others forward to
        opened.push_async_callback(commands.forwarder.stop)
        log.info("replica %s", manager.replica_id)
        # A start-up step, not a service: it must finish before this server takes prompts.
        await manager.recover()
        automations = AutomationEngine(store, commands)
        await automations.open()  # its feed cursor, before any run can start
        slack_inbound = None
        if settings.slack.enabled:
            from openinspect.integrations.slack.inbound import SlackInbound
            from openinspect.integrations.slack.outbound import CONSUMER as SLACK_CONSUMER

            # The Slack threads' cursor, before any prompt runs.
            await store.feed.cursor(SLACK_CONSUMER, start="end")
            slack_inbound = SlackInbound(settings, store, bus, commands, models, people.repo_policy)
            opened.push_async_callback(slack_inbound.close)
        # The integrations that post through the outbox register here (issue 13).
        github_handlers: list[GithubHandler] = []
        outbox_senders: dict[str, Sender] = {}
        outbox_projections: list[Projection] = []
        github_inbox = None
        if bot_is_on(settings) and people.github is not None:
            from openinspect.integrations.github.bot import ReviewBot
            from openinspect.integrations.github.deps import BotDeps
            from openinspect.integrations.github.feedback import ReviewFeedback
            from openinspect.integrations.github.fixes import FixReplies, FixRequests
            from openinspect.integrations.github.inbox import GithubInbox

            bot_deps = BotDeps(settings, store, bus, commands, people.github)
            github_inbox = GithubInbox(store)
            opened.push_async_callback(github_inbox.close)
            github_handlers += [
                ReviewBot(bot_deps, github_inbox),
                FixRequests(bot_deps, github_inbox),
                ReviewFeedback(bot_deps, github_inbox),
            ]
            from openinspect.integrations.github.sender import GithubSender

            outbox_projections.append(FixReplies(bot_deps).projection)
            outbox_senders[GithubSender.source] = GithubSender(people.github)
        linear = None
        if settings.linear.enabled:
            from openinspect.integrations.linear.app import LinearApp

            linear = LinearApp.build(
                settings, store, bus, commands, models, people.repo_policy, secret
            )
            opened.push_async_callback(linear.aclose)
            outbox_senders[linear.sender.source] = linear.sender
            outbox_projections.append(linear.outbound.projection)
        for projection in outbox_projections:  # their cursors, before any prompt runs
            await store.feed.cursor(projection.consumer, start="end")
        services = ServiceRunner(
            build_services(
                ServiceContext(
                    settings,
                    store,
                    manager,
                    automations=automations,
                    bus=bus,
                    slack_inbound=slack_inbound,
                    outbox_senders=outbox_senders,
                    outbox_projections=outbox_projections,
                    github_inbox=github_inbox,
                    linear_inbound=linear.inbound if linear is not None else None,
                )
            ),
            store.leases,
            lease_ttl_s=settings.services.lease_ttl_s,
            backoff_max_s=settings.services.backoff_max_s,
        )
        services.start()
        opened.push_async_callback(services.stop)
        yield ControlPlane(
            settings=settings,
            store=store,
            bus=bus,
            events=events,
            redaction=redaction,
            models=models,
            hub=hub,
            people=people,
            origins=origins,
            pulls=pulls,
            session_deps=session_deps,
            manager=manager,
            commands=commands,
            git_authority=git_authority,
            bootstrap=bootstrap,
            ws_tokens=WsTokens(secret, settings.sessions.ws_token_ttl_s),
            services=services,
            automations=automations,
            slack_inbound=slack_inbound,
            github_handlers=github_handlers,
            outbox_senders=outbox_senders,
            github_inbox=github_inbox,
            linear=linear,
            egress=egress,
        )
