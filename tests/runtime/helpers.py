"""What runtime tests share: a boot plan over a test upstream, and the environment git gets."""

from __future__ import annotations

import os
from pathlib import Path

from openinspect.runtime.boot import BootPlan


def boot_plan(tmp_path: Path, origin: Path) -> BootPlan:
    """A fresh boot of ``origin``'s ``main`` into ``tmp_path / "ws"``."""
    return BootPlan(
        workspace=tmp_path / "ws",
        clone_source=str(origin),
        base_branch="main",
        boot_mode="fresh",
        setup_timeout_s=30,
        start_timeout_s=30,
    )


def git_env(tmp_path: Path) -> dict[str, str]:
    """The environment boot and bind run git with (no system config, a home of its own)."""
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home"), "GIT_CONFIG_NOSYSTEM": "1"}
