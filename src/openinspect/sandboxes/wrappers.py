"""Cross-cutting behaviour around a provider: wrappers, not flags on each backend.

A wrapper is itself a :class:`~.base.SandboxProvider` around another one. :class:`ProviderWrapper`
passes everything through, including what a backend offers beyond the protocol (an optional
capability such as :class:`~.base.SnapshotCapable`, the ``bwrap`` backend's limit probes), so a
wrapper overrides only the calls it is about. The registry applies the wrappers the settings ask
for (:func:`~.registry.resolve_provider`). The warm pool is not one: it makes whole
boxes through the session engine's steps (``sessions/pool.py``), counted by this limit.
"""

from __future__ import annotations

import logging
from typing import Any

from openinspect.errors import SandboxAtCapacity

from .base import SandboxExit, SandboxHandle, SandboxProvider, SandboxSpec

logger = logging.getLogger(__name__)


class ProviderWrapper:
    """A provider that forwards every call to ``wrapped``; subclasses override some."""

    def __init__(self, wrapped: SandboxProvider) -> None:
        self.wrapped = wrapped
        self.name = wrapped.name
        self.isolates = wrapped.isolates

    async def create(self, spec: SandboxSpec) -> SandboxHandle:
        """See :meth:`SandboxProvider.create`."""
        return await self.wrapped.create(spec)

    async def wait(self, handle: SandboxHandle) -> SandboxExit:
        """See :meth:`SandboxProvider.wait`."""
        return await self.wrapped.wait(handle)

    async def destroy(self, handle: SandboxHandle) -> None:
        """See :meth:`SandboxProvider.destroy`."""
        await self.wrapped.destroy(handle)

    def __getattr__(self, name: str) -> Any:
        # Only reached for what this class lacks: a capability or extra of the backend.
        return getattr(self.wrapped, name)


class ConcurrencyLimit(ProviderWrapper):
    """At most ``max_live`` boxes at once (``sandbox.max_live``): a ``create`` past the cap
    raises ``SandboxUnavailable`` at once rather than queueing, since the session that asked
    reports it and retries on its next prompt.

    A box counts from the moment its ``create`` starts until it is destroyed or ``wait`` saw
    it end (a box that died frees its place before anyone destroys it). The count is this
    process's: each replica has its own cap.
    """

    def __init__(self, wrapped: SandboxProvider, max_live: int) -> None:
        if max_live < 1:
            raise ValueError(f"max_live must be at least 1, got {max_live}")
        super().__init__(wrapped)
        self.max_live = max_live
        self._live: set[str] = set()

    @property
    def live(self) -> int:
        """Boxes counted against the cap right now."""
        return len(self._live)

    async def create(self, spec: SandboxSpec) -> SandboxHandle:
        """As the wrapped ``create``, unless the cap is reached."""
        if spec.sandbox_id not in self._live and len(self._live) >= self.max_live:
            logger.warning(
                "sandbox %s refused: %d of %d boxes running",
                spec.sandbox_id,
                len(self._live),
                self.max_live,
            )
            raise SandboxAtCapacity(
                f"this server already runs its maximum of {self.max_live} sandboxes",
                hint="try again once another session's sandbox has stopped, or ask an admin to "
                "raise OPENINSPECT_SANDBOX__MAX_LIVE",
                max_live=self.max_live,
            )
        self._live.add(spec.sandbox_id)  # before awaiting: concurrent creates see it
        try:
            return await self.wrapped.create(spec)
        except BaseException:
            self._live.discard(spec.sandbox_id)
            raise

    async def wait(self, handle: SandboxHandle) -> SandboxExit:
        """As the wrapped ``wait``; the ended box no longer counts."""
        ended = await self.wrapped.wait(handle)
        self._live.discard(handle.sandbox_id)
        return ended

    async def destroy(self, handle: SandboxHandle) -> None:
        """As the wrapped ``destroy``; the box no longer counts, even if destroying failed
        half-way (a provider's destroy only fails for a box it cannot reach any more)."""
        try:
            await self.wrapped.destroy(handle)
        finally:
            self._live.discard(handle.sandbox_id)


def concurrency_limit(provider: SandboxProvider) -> ConcurrencyLimit | None:
    """The :class:`ConcurrencyLimit` among ``provider``'s wrappers, if there is one."""
    current: object = provider
    while isinstance(current, ProviderWrapper):
        if isinstance(current, ConcurrencyLimit):
            return current
        current = current.wrapped
    return None
