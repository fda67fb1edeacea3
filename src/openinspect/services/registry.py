"""Services by name: a lazy name → ``"module:factory"`` table, open to entry points.

Built-ins register here exactly as a third-party package would through the entry point group
:data:`ENTRY_POINT_GROUP` (``name = "package.module:factory"``). A factory is called with the
:class:`ServiceContext` and returns a :class:`~openinspect.services.base.Service`, or None when
its settings turn it off (the built-ins read ``services.<name>_enabled``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from openinspect.errors import ConfigError
from openinspect.services.base import Service
from openinspect.sessions.manager import SessionManager
from openinspect.settings import Settings
from openinspect.store import Store

if TYPE_CHECKING:  # the engine imports the session layer; the registry is imported early
    from openinspect.automations.runs import AutomationEngine
    from openinspect.bus import Bus
    from openinspect.integrations.github.inbox import GithubInbox
    from openinspect.integrations.linear.inbound import LinearInbound
    from openinspect.integrations.outbox import Projection, Sender
    from openinspect.integrations.slack.inbound import SlackInbound

ENTRY_POINT_GROUP = "openinspect.services"
BUILTIN_SERVICES: dict[str, str] = {
    "automation_runs": "openinspect.services.scheduler:automation_runs",
    "draft_sweep": "openinspect.services.tidy:draft_sweep",
    "evict": "openinspect.services.ownership:evict",
    "failover": "openinspect.services.ownership:failover",
    "github_inbox": "openinspect.services.github_inbox:github_inbox",
    "idle_reaper": "openinspect.services.tidy:idle_reaper",
    "image_builds": "openinspect.services.images:image_builds",
    "linear_inbox": "openinspect.services.linear_inbound:linear_inbox",
    "outbox": "openinspect.services.outbox:outbox",
    "presence_heartbeat": "openinspect.services.presence:presence_heartbeat",
    "scheduler": "openinspect.services.scheduler:scheduler",
    "slack_outbound": "openinspect.services.slack_outbound:slack_outbound",
    "slack_inbox": "openinspect.services.slack_inbound:slack_inbox",
    "slack_socket": "openinspect.services.slack_inbound:slack_socket",
    "spend_wake": "openinspect.services.spend:spend_wake",
    "warm_pool": "openinspect.services.pool:warm_pool",
    "webhook_prune": "openinspect.services.webhooks:webhook_prune",
}


@dataclass(frozen=True)
class ServiceContext:
    """What a service factory may use."""

    settings: Settings
    store: Store
    manager: SessionManager
    automations: AutomationEngine | None = None
    """The automation engine (the scheduler's and the outcome consumer's); None: neither runs."""
    bus: Bus | None = None
    slack_inbound: SlackInbound | None = None
    """The Slack app's inbound side (its inbox recovery and Socket Mode); None with Slack off."""
    outbox_senders: Mapping[str, Sender] = field(default_factory=dict)
    """The outbox's senders by source (``github``, ``linear``): the integrations configured."""
    outbox_projections: Sequence[Projection] = ()
    """The integrations' feed projections that write outbox rows."""
    github_inbox: GithubInbox | None = None
    """The GitHub bot's stored deliveries (its recovery pass); None with the bot off."""
    linear_inbound: LinearInbound | None = None
    """The Linear agent's inbound side (its inbox recovery); None with Linear off."""


ServiceFactory = Callable[[ServiceContext], Service | None]


def available_services() -> dict[str, str]:
    """Every known service name and its factory's import path (built-ins win)."""
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **BUILTIN_SERVICES}


def build_services(context: ServiceContext) -> list[Service]:
    """The services the settings turn on, in name order. Raises :class:`ConfigError` for a
    factory that cannot be loaded or that returns something that is not a service."""
    built: list[Service] = []
    for name, target in sorted(available_services().items()):
        module_name, _, attr = target.partition(":")
        try:
            factory: ServiceFactory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"service {name!r} ({target}) cannot be loaded: {exc}",
                hint="install the package that provides it",
            ) from exc
        service = factory(context)
        if service is None:
            continue
        if not isinstance(service, Service) or service.name != name:
            raise ConfigError(f"{target} did not make a service called {name!r}")
        built.append(service)
    return built
