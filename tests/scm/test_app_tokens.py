"""The installation token cache on its own: reuse, refresh before expiry, one mint at a time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from openinspect.errors import ScmUnavailable
from openinspect.scm.app_tokens import InstallationTokenCache
from openinspect.scm.base import InstallationToken

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Minter:
    """Counts mints; each token lives ``ttl`` from the current (fake) time."""

    def __init__(self, ttl: timedelta = timedelta(hours=1)) -> None:
        self.now = NOW
        self.ttl = ttl
        self.calls: list[tuple[int, tuple[str, ...] | None]] = []
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def __call__(self, inst: int, repos: tuple[str, ...] | None) -> InstallationToken:
        self.calls.append((inst, repos))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ScmUnavailable("down")
        return InstallationToken(f"tok{len(self.calls)}", self.now + self.ttl)


async def test_reuses_until_the_margin_then_refreshes() -> None:
    mint = Minter()
    cache = InstallationTokenCache(mint, margin_s=300, clock=lambda: mint.now)
    first = await cache.get(7, ("widgets",))
    assert (await cache.get(7, ("widgets",))).token == first.token
    mint.now += timedelta(minutes=54)  # 6 min left: still more than the margin
    assert (await cache.get(7, ("widgets",))).token == first.token
    mint.now += timedelta(minutes=2)  # 4 min left: refresh
    assert (await cache.get(7, ("widgets",))).token == "tok2"
    assert len(mint.calls) == 2


async def test_keys_are_per_installation_and_repos() -> None:
    mint = Minter()
    cache = InstallationTokenCache(mint, margin_s=300, clock=lambda: mint.now)
    await cache.get(7, ("a",))
    await cache.get(7, ("b",))
    await cache.get(8, ("a",))
    await cache.get(7, None)
    await cache.get(7, ("a",))
    assert mint.calls == [(7, ("a",)), (7, ("b",)), (8, ("a",)), (7, None)]


async def test_concurrent_callers_share_one_mint() -> None:
    mint = Minter()
    mint.gate = asyncio.Event()
    cache = InstallationTokenCache(mint, margin_s=300, clock=lambda: mint.now)
    tasks = [asyncio.create_task(cache.get(7, ("a",))) for _ in range(5)]
    while not mint.calls:
        await asyncio.sleep(0)
    mint.gate.set()
    tokens = await asyncio.gather(*tasks)
    assert {t.token for t in tokens} == {"tok1"}
    assert len(mint.calls) == 1


async def test_a_failed_mint_is_not_cached_and_forget_drops_tokens() -> None:
    mint = Minter()
    mint.fail = True
    cache = InstallationTokenCache(mint, margin_s=300, clock=lambda: mint.now)
    with pytest.raises(ScmUnavailable):
        await cache.get(7, ("a",))
    mint.fail = False
    assert (await cache.get(7, ("a",))).token == "tok2"
    cache.forget(7)
    assert (await cache.get(7, ("a",))).token == "tok3"


async def test_a_token_shorter_than_the_margin_is_still_returned() -> None:
    mint = Minter(ttl=timedelta(seconds=60))
    cache = InstallationTokenCache(mint, margin_s=300, clock=lambda: mint.now)
    assert (await cache.get(7, None)).token == "tok1"
    assert (await cache.get(7, None)).token == "tok2"  # never fresh enough to reuse
