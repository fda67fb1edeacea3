"""Sandbox backends by name: a lazy name → ``"module:Class"`` table, open to entry points.

Built-ins register here exactly as a third-party package would through the entry point group
:data:`ENTRY_POINT_GROUP` (``name = "package.module:Class"``). A provider class is constructed
with its own settings section (``settings.sandbox.<name>``, None when there is none) and a
:class:`~openinspect.sandboxes.base.BackendContext`, never the whole settings, and must satisfy
:class:`~openinspect.sandboxes.base.SandboxProvider`. The name ``auto`` picks ``bwrap`` where
bubblewrap can create namespaces and ``process`` elsewhere. The backend comes wrapped in what
the settings ask for (:mod:`.wrappers`: ``sandbox.max_live`` caps the boxes running at once).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging

from pydantic import BaseModel

from openinspect.errors import ConfigError
from openinspect.settings import Settings

from .base import BackendContext, SandboxProvider
from .wrappers import ConcurrencyLimit

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "openinspect.sandbox_providers"
AUTO = "auto"
BUILTIN_PROVIDERS: dict[str, str] = {
    "bwrap": "openinspect.sandboxes.bwrap:BwrapProvider",
    "process": "openinspect.sandboxes.process:ProcessProvider",
}


def available_providers() -> dict[str, str]:
    """Every known backend name and its import path (built-ins win over entry points)."""
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **BUILTIN_PROVIDERS}


def bwrap_works() -> bool:
    """Whether bubblewrap can create the namespaces a ``bwrap`` sandbox needs (probed once)."""
    from .bwrap import probe_bwrap

    return probe_bwrap() is None


def resolve_provider(name: str, settings: Settings) -> SandboxProvider:
    """Construct the backend called ``name`` (or the best local one for ``auto``), wrapped as
    the settings ask.

    Raises :class:`ConfigError` for an unknown name (listing the available ones) or a backend
    that cannot be imported.
    """
    if name == AUTO:
        # Imported here: a backend module is loaded only once it is chosen.
        from .bwrap import probe_bwrap

        reason = probe_bwrap()
        if reason is not None:
            logger.warning("bwrap is unavailable (%s); falling back to 'process'", reason)
        name = "process" if reason else "bwrap"
    providers = available_providers()
    target = providers.get(name)
    if target is None:
        raise ConfigError(
            f"unknown sandbox provider {name!r}; available: {', '.join(sorted(providers))}, "
            f"or {AUTO!r}",
            hint="set OPENINSPECT_SANDBOX__PROVIDER to one of them",
        )
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"sandbox provider {name!r} ({target}) cannot be loaded: {exc}",
            hint="install the package that provides it",
        ) from exc
    section = getattr(settings.sandbox, name, None)
    config = section if isinstance(section, BaseModel) else None  # a backend with none of its own
    provider = cls(config, BackendContext.from_settings(settings))
    if not isinstance(provider, SandboxProvider):
        raise ConfigError(f"{target} does not implement the SandboxProvider protocol")
    return wrap_provider(provider, settings)


def wrap_provider(provider: SandboxProvider, settings: Settings) -> SandboxProvider:
    """``provider`` in the wrappers the settings ask for (:mod:`.wrappers`)."""
    if settings.sandbox.max_live:
        return ConcurrencyLimit(provider, settings.sandbox.max_live)
    return provider
