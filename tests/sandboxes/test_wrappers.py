"""Wrappers around a real provider: the concurrency limit counts boxes from create to their end,
and the registry applies it from the settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openinspect.errors import SandboxUnavailable
from openinspect.sandboxes.base import SandboxProvider, SnapshotCapable
from openinspect.sandboxes.process import ProcessProvider
from openinspect.sandboxes.registry import resolve_provider
from openinspect.sandboxes.wrappers import ConcurrencyLimit, ProviderWrapper
from openinspect.settings import SandboxSettings, Settings

from .conftest import StartSandbox

BOOT_TIMEOUT_S = 60.0


async def test_a_box_past_the_cap_is_refused_until_one_is_destroyed(
    process_provider: ProcessProvider, start_sandbox: StartSandbox
) -> None:
    limited = ConcurrencyLimit(process_provider, max_live=1)
    first = await start_sandbox(limited)
    await first.conn.wait_ready(BOOT_TIMEOUT_S)

    with pytest.raises(SandboxUnavailable) as refused:
        await start_sandbox(limited)
    assert "maximum of 1 sandboxes" in refused.value.message
    assert refused.value.hint is not None and "OPENINSPECT_SANDBOX__MAX_LIVE" in refused.value.hint
    assert limited.live == 1

    await limited.destroy(first.handle)
    assert limited.live == 0
    second = await start_sandbox(limited)
    await second.conn.wait_ready(BOOT_TIMEOUT_S)
    assert (await second.conn.exec("echo ok", timeout_s=10)).stdout == "ok\n"


async def test_a_box_that_ends_on_its_own_frees_its_place(
    process_provider: ProcessProvider, start_sandbox: StartSandbox
) -> None:
    limited = ConcurrencyLimit(process_provider, max_live=1)
    box = await start_sandbox(limited)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    ended = asyncio.ensure_future(limited.wait(box.handle))
    await asyncio.sleep(0.1)
    assert limited.live == 1  # still running: wait has not returned

    await box.conn.shutdown()  # the runtime exits 0 on its own
    assert (await asyncio.wait_for(ended, BOOT_TIMEOUT_S)).status == 0
    assert limited.live == 0
    again = await start_sandbox(limited)
    await again.conn.wait_ready(BOOT_TIMEOUT_S)


async def test_a_create_that_fails_does_not_count(
    process_provider: ProcessProvider, start_sandbox: StartSandbox, tmp_path: Path
) -> None:
    limited = ConcurrencyLimit(process_provider, max_live=1)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the workspace's parent should be")
    with pytest.raises(SandboxUnavailable, match="cannot create the workspace"):
        await start_sandbox(limited, workspace_dir=blocker / "ws")
    assert limited.live == 0
    box = await start_sandbox(limited)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)


def test_the_wrapper_passes_capabilities_and_extras_through(settings: Settings) -> None:
    class Snapshotting(ProcessProvider):
        async def snapshot(self, handle: object) -> object:
            return handle

        async def restore(self, ref: object, spec: object) -> object:
            return ref

        async def discard_snapshot(self, ref: object) -> None:
            return None

    plain = ConcurrencyLimit(ProcessProvider.from_settings(settings), max_live=2)
    capable = ConcurrencyLimit(Snapshotting.from_settings(settings), max_live=2)
    assert isinstance(plain, SandboxProvider) and not isinstance(plain, SnapshotCapable)
    assert isinstance(capable, SnapshotCapable)
    assert (plain.name, plain.isolates) == ("process", False)


def test_the_registry_wraps_the_backend_when_the_settings_cap_boxes(settings: Settings) -> None:
    assert not isinstance(resolve_provider("process", settings), ProviderWrapper)
    capped = Settings(home=settings.home, sandbox=SandboxSettings(max_live=3))
    provider = resolve_provider("process", capped)
    assert isinstance(provider, ConcurrencyLimit)
    assert provider.max_live == 3
    assert isinstance(provider.wrapped, ProcessProvider)
    with pytest.raises(ValueError, match="at least 1"):
        ConcurrencyLimit(ProcessProvider.from_settings(settings), max_live=0)
