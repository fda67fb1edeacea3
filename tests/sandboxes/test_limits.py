"""How the settings become a box's limits, and where they go on bwrap's command line."""

from __future__ import annotations

from pathlib import Path

from openinspect.runtime.address import unix_url
from openinspect.sandboxes.base import SandboxSpec
from openinspect.sandboxes.bwrap import BoxInputs, build_argv
from openinspect.sandboxes.cgroups import MIB, BoxLimits
from openinspect.settings import SandboxSettings


def test_settings_become_box_limits_and_zero_means_none() -> None:
    limits = BoxLimits.from_settings(
        SandboxSettings(memory_mib=512, cpus=0.5, cpu_weight=20), pids_max=300
    )
    assert limits == BoxLimits(memory_bytes=512 * MIB, pids_max=300, cpu_cores=0.5, cpu_weight=20)
    off = BoxLimits.from_settings(SandboxSettings(memory_mib=0, cpus=0, cpu_weight=0), pids_max=0)
    assert off == BoxLimits(memory_bytes=None, pids_max=None, cpu_cores=None, cpu_weight=None)


def test_the_tmp_size_and_the_block_fd_reach_bwrap(tmp_path: Path) -> None:
    spec = SandboxSpec(
        sandbox_id="sbx-argv",
        workspace_dir=tmp_path / "ws",
        clone_source=str(tmp_path / "mirror.git"),
        clone_source_is_path=True,
        base_branch="main",
        token="tok",
        bridge_url=unix_url(str(tmp_path / "bridge.sock")),
    )
    argv = build_argv(
        spec,
        bwrap="bwrap",
        python="/usr/bin/python3",
        inputs=BoxInputs(str(spec.workspace_dir), runtime_zip=8, block=7),
        tmp_size_bytes=64 * MIB,
    )
    tmp = argv.index("/tmp")
    assert argv[tmp - 3 : tmp + 1] == ["--size", str(64 * MIB), "--tmpfs", "/tmp"]
    assert argv[argv.index("--block-fd") + 1] == "7"
    assert argv.index("--block-fd") < argv.index("--")
