"""The composition root: built in order from real parts, closed completely, also when a step of
the build fails."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.errors import ConfigError
from openinspect.services.registry import BUILTIN_SERVICES
from openinspect.settings import SandboxSettings, SessionSettings, Settings
from openinspect.testing.inprocess import InProcessProvider


def _settings(home: Path, provider: str = "process") -> Settings:
    return Settings(
        home=home,
        sandbox=SandboxSettings(provider=provider),
        sessions=SessionSettings(tidy_interval_s=0),
    )


def _open_database_files(home: Path) -> list[str]:
    """This process's file descriptors on the store's SQLite files (the database, its WAL): a
    store that was not closed keeps its pooled connection, and so one of these, open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed while we looked (the listing's own descriptor)
            continue
        if target.startswith(str(home)):
            found.append(target)
    return found


async def test_the_parts_share_one_graph_and_close_with_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with open_control_plane(_settings(home)) as plane:
        # One object graph: each part is the one the others were built on, not a copy.
        assert plane.manager.deps is plane.session_deps
        assert plane.session_deps.store is plane.store
        assert plane.session_deps.events is plane.events
        assert plane.session_deps.pulls is plane.pulls
        assert plane.commands.manager is plane.manager
        assert plane.session_deps.provider.name == "process"
        assert plane.bootstrap.user is not None and plane.bootstrap.user.role == "admin"
        assert _open_database_files(home)  # the store is open
        with pytest.raises(dataclasses.FrozenInstanceError):
            plane.manager = plane.manager  # type: ignore[misc]
    assert _open_database_files(home) == []


async def test_a_part_that_cannot_be_built_leaves_nothing_open(tmp_path: Path) -> None:
    """An unknown sandbox backend fails the build after the store, the bus, the people services
    and the origins were opened: they are closed again before the error reaches the caller."""
    home = tmp_path / "home"
    with pytest.raises(ConfigError, match="nowhere"):
        async with open_control_plane(_settings(home, provider="nowhere")):
            pytest.fail("a control plane without a sandbox backend was yielded")
    assert _open_database_files(home) == []


async def test_a_service_that_cannot_be_loaded_closes_everything_opened_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The services are built last, after recovery ran on the store: a broken one (a plugin whose
    module is missing) closes the manager, the store and the rest on its way out."""
    monkeypatch.setitem(BUILTIN_SERVICES, "broken", "openinspect.no_such_module:factory")
    home = tmp_path / "home"
    with pytest.raises(ConfigError, match="broken"):
        async with open_control_plane(_settings(home)):
            pytest.fail("a control plane with a broken service was yielded")
    assert _open_database_files(home) == []
    # The same home opens again cleanly once the plugin is gone.
    monkeypatch.delitem(BUILTIN_SERVICES, "broken")
    async with open_control_plane(_settings(home)) as plane:
        assert isinstance(plane, ControlPlane)
        assert "broken" not in plane.services.names


async def test_a_given_sandbox_backend_replaces_the_configured_one(tmp_path: Path) -> None:
    """Tests hand in their backend at the build (an in-process one here); nothing is swapped
    in afterwards: the actors' shared parts cannot be reassigned."""
    boxes = InProcessProvider()
    async with open_control_plane(_settings(tmp_path / "home"), provider=boxes) as plane:
        assert plane.session_deps.provider is boxes
        with pytest.raises(dataclasses.FrozenInstanceError):
            plane.session_deps.provider = boxes  # type: ignore[misc]
