"""A cache of GitHub App installation tokens, refreshed before they expire.

GitHub mints installation tokens for about an hour. A token is kept per (installation, repos)
and replaced once less than the refresh margin remains, so a git push or an API call never starts
with a token about to die. Concurrent callers of the same key share one mint: the first takes
the key's lock and mints, the rest wait on it and reuse the result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from openinspect.scm.base import InstallationToken

TokenKey = tuple[int, tuple[str, ...] | None]
"""(installation id, repository names the token is scoped to, or None for all of them)."""
Mint = Callable[[int, tuple[str, ...] | None], Awaitable[InstallationToken]]


class InstallationTokenCache:
    """``await cache.get(installation_id, ("repo",))`` returns a token with more than
    ``margin_s`` seconds left, minting one through ``mint`` when needed."""

    def __init__(
        self,
        mint: Mint,
        *,
        margin_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._mint = mint
        self._margin_s = margin_s
        self._clock = clock
        self._tokens: dict[TokenKey, InstallationToken] = {}
        self._locks: dict[TokenKey, asyncio.Lock] = {}

    def _fresh(self, key: TokenKey) -> InstallationToken | None:
        token = self._tokens.get(key)
        if token is not None and token.seconds_left(self._clock()) > self._margin_s:
            return token
        return None

    async def get(self, installation_id: int, repos: tuple[str, ...] | None) -> InstallationToken:
        key: TokenKey = (installation_id, tuple(sorted(repos)) if repos is not None else None)
        token = self._fresh(key)
        if token is not None:
            return token
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            token = self._fresh(key)  # minted by whoever held the lock before us
            if token is None:
                token = await self._mint(*key)
                self._tokens[key] = token
            return token

    def forget(self, installation_id: int | None = None) -> None:
        """Drop cached tokens (of one installation, or all), e.g. after GitHub refused one."""
        for key in list(self._tokens):
            if installation_id is None or key[0] == installation_id:
                del self._tokens[key]
