"""Pub/sub backends, chosen by URL: ``memory://`` (default) or ``redis://…``."""

from __future__ import annotations

from openinspect.bus.base import Bus, SubscriberOverflow
from openinspect.errors import ConfigError

__all__ = ["Bus", "SubscriberOverflow", "open_bus"]


def open_bus(url: str) -> Bus:
    """The bus for ``url``. Unknown schemes raise ``ConfigError`` naming the supported ones."""
    scheme = url.split("://", 1)[0]
    if scheme == "memory":
        from openinspect.bus.memory import MemoryBus

        return MemoryBus()
    if scheme in ("redis", "rediss", "unix"):
        from openinspect.bus.redis import RedisBus

        return RedisBus(url)
    raise ConfigError(
        f"Unknown bus URL {url!r}", hint="Use memory:// (one process) or redis://host:6379/0"
    )
