"""The app's token for a workspace, fresh: read from the install (``store.linear``, sealed),
refreshed :data:`REFRESH_MARGIN_S` before it expires, and refreshed once more when Linear
refuses it (``call``).

A refresh rotates the pair (the old refresh token stops working), so one refresh per workspace
runs at a time in this process; when Linear refuses a refresh, the install is read again first:
another server may have rotated the pair meanwhile, and its token is then the one to use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from openinspect.domain.events import utcnow
from openinspect.errors import LinearAuthFailed
from openinspect.integrations.linear.client import LinearClient
from openinspect.store import Store
from openinspect.store.linear import LinearInstall

log = logging.getLogger(__name__)
REFRESH_MARGIN_S = 300.0
T = TypeVar("T")
_NOT_INSTALLED_HINT = "An admin installs the Linear app (GET /integrations/linear/install)"


class LinearTokens:
    def __init__(self, store: Store, client: LinearClient) -> None:
        self._store = store
        self._client = client
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, org_id: str) -> asyncio.Lock:
        return self._locks.setdefault(org_id, asyncio.Lock())

    async def _install(self, org_id: str) -> LinearInstall:
        found = await self._store.linear.install(org_id)
        if found is None:
            raise LinearAuthFailed(
                "The Linear app is not installed in this workspace", hint=_NOT_INSTALLED_HINT
            )
        return found

    @staticmethod
    def _expiring(install: LinearInstall) -> bool:
        at = install.info.expires_at
        return at is not None and at - utcnow() < timedelta(seconds=REFRESH_MARGIN_S)

    async def token(self, org_id: str) -> str:
        """A token for the workspace that is not about to expire."""
        install = await self._install(org_id)
        if self._expiring(install) and install.refresh_token:
            return await self.refreshed(org_id, install.access_token)
        return install.access_token

    async def refreshed(self, org_id: str, stale: str) -> str:
        """A token other than ``stale`` (refreshing, unless another call did meanwhile)."""
        async with self._lock(org_id):
            install = await self._install(org_id)
            if install.access_token != stale and not self._expiring(install):
                return install.access_token
            if not install.refresh_token:
                raise LinearAuthFailed(
                    "Linear refused the app's token and there is no refresh token",
                    hint="Install the Linear app again",
                )
            try:
                pair = await self._client.refresh(install.refresh_token)
            except LinearAuthFailed:
                again = await self._install(org_id)
                if again.access_token != install.access_token:  # rotated elsewhere meanwhile
                    return again.access_token
                raise
            await self._store.linear.update_tokens(
                org_id,
                access_token=pair.access_token,
                refresh_token=pair.refresh_token or install.refresh_token,
                expires_at=pair.expires_at,
            )
            log.info("linear: the token of workspace %s was refreshed", org_id)
            return pair.access_token

    async def call(self, org_id: str, request: Callable[[str], Awaitable[T]]) -> T:
        """``request(token)``; when Linear refuses the token, once more with a refreshed one."""
        token = await self.token(org_id)
        try:
            return await request(token)
        except LinearAuthFailed:
            fresh = await self.refreshed(org_id, token)
        return await request(fresh)
