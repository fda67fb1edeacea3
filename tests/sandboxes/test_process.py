"""The ``process`` provider: boots, runs commands, leaves nothing behind (no isolation)."""

from __future__ import annotations

import pytest

from openinspect.errors import ConfigError, SandboxUnavailable
from openinspect.sandboxes.base import SandboxProvider, SnapshotCapable
from openinspect.sandboxes.process import ProcessProvider
from openinspect.sandboxes.registry import available_providers, resolve_provider
from openinspect.settings import ProcessSettings, SandboxSettings, Settings

from .conftest import StartSandbox, git, wait_until_gone, wait_until_running

BOOT_TIMEOUT_S = 60.0


async def test_boots_fresh_runs_setup_and_start(
    process_provider: ProcessProvider, start_sandbox: StartSandbox
) -> None:
    box = await start_sandbox(process_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)

    assert box.conn.status == "ready"
    assert process_provider.isolates is False
    repo = box.handle.repo_dir
    # Booted knowing no session: on the base branch until bound.
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=repo).strip() == "main"
    assert await box.bind() == {"branch": box.work_branch, "tracking": False, "proxied": False}
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=repo).strip() == box.work_branch
    assert (repo / ".setup-ran").read_text() == "fresh\n"
    assert (repo / ".start-ran").read_text() == "fresh\n"
    hello = box.of_type("hello")[0]
    assert hello["sandbox_id"] == box.spec.sandbox_id
    assert hello["boot_mode"] == "fresh"
    assert [e["phase"] for e in box.of_type("boot")] == ["clone", "setup", "start", "ready"]
    lines = [(e["source"], e["line"]) for e in box.of_type("log")]
    assert ("setup", "setup running in fresh mode") in lines
    assert ("start", "start running in fresh mode") in lines


async def test_existing_work_branch_is_tracked(
    process_provider: ProcessProvider, start_sandbox: StartSandbox
) -> None:
    box = await start_sandbox(process_provider, work_branch="openinspect/existing")
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    assert (await box.bind())["tracking"] is True

    repo = box.handle.repo_dir
    assert (repo / "NOTES.md").read_text() == "work in progress\n"
    upstream = git("rev-parse", "--abbrev-ref", "@{upstream}", cwd=repo).strip()
    assert upstream == "origin/openinspect/existing"


async def test_restart_reuses_workspace_and_build_mode_skips_start(
    process_provider: ProcessProvider, start_sandbox: StartSandbox
) -> None:
    first = await start_sandbox(process_provider, boot_mode="build")
    await first.conn.wait_ready(BOOT_TIMEOUT_S)
    assert [e["phase"] for e in first.of_type("boot")] == ["clone", "setup", "ready"]
    assert not (first.handle.repo_dir / ".start-ran").exists()
    (first.handle.repo_dir / "scratch.txt").write_text("kept")
    await process_provider.destroy(first.handle)

    second = await start_sandbox(
        process_provider, boot_mode="repo_image", workspace_dir=first.spec.workspace_dir
    )
    await second.conn.wait_ready(BOOT_TIMEOUT_S)

    boots = second.of_type("boot")
    # As a box from a repo image: the checkout is fetched up to the mirror's newest commit.
    assert boots[0]["message"] == "updating the image's checkout to the newest main"
    assert [e["phase"] for e in boots] == ["clone", "start", "ready"]  # no setup.sh
    assert (second.handle.repo_dir / "scratch.txt").read_text() == "kept"
    assert (second.handle.repo_dir / ".start-ran").read_text() == "repo_image\n"


async def test_env_is_built_from_scratch(
    process_provider: ProcessProvider,
    start_sandbox: StartSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-SECRET-process")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-SECRET-process")
    box = await start_sandbox(process_provider, env={"DATABASE_URL": "sqlite:///dev.db"})
    await box.conn.wait_ready(BOOT_TIMEOUT_S)

    result = await box.conn.exec("env", timeout_s=30)

    assert "SECRET" not in result.stdout
    assert "ANTHROPIC_API_KEY" not in result.stdout
    assert "OPENINSPECT_SANDBOX_TOKEN" not in result.stdout
    assert "DATABASE_URL=sqlite:///dev.db" in result.stdout.splitlines()
    assert f"HOME={box.spec.workspace_dir / '.home'}" in result.stdout.splitlines()


async def test_destroy_leaves_no_process_and_is_idempotent(
    process_provider: ProcessProvider, start_sandbox: StartSandbox, marker: str
) -> None:
    box = await start_sandbox(process_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    # A daemon in a session of its own, detached from the command's process group.
    await box.conn.exec(
        f"setsid bash -c 'exec -a {marker} sleep 600' >/dev/null 2>&1 < /dev/null &", timeout_s=30
    )
    await wait_until_running(marker)

    await process_provider.destroy(box.handle)
    await process_provider.destroy(box.handle)

    assert await wait_until_gone(marker, timeout_s=5) == []
    assert (await process_provider.wait(box.handle)).status == -1


def test_snapshots_are_a_capability_it_does_not_claim(process_provider: ProcessProvider) -> None:
    assert isinstance(process_provider, SandboxProvider)
    assert not isinstance(process_provider, SnapshotCapable)


def test_registry_resolves_names(settings: Settings) -> None:
    assert {"bwrap", "process"} <= set(available_providers())
    assert resolve_provider("process", settings).name == "process"
    with pytest.raises(ConfigError, match="available: bwrap, process"):
        resolve_provider("docker-nope", settings)


async def test_the_registry_hands_the_backend_its_own_section(
    settings: Settings, start_sandbox: StartSandbox
) -> None:
    missing = settings.home_dir / "no-such-python"
    configured = settings.model_copy(
        update={"sandbox": SandboxSettings(process=ProcessSettings(python=str(missing)))}
    )
    provider = resolve_provider("process", configured)
    with pytest.raises(SandboxUnavailable, match="cannot start the process sandbox"):
        await start_sandbox(provider)
