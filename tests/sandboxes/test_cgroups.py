"""Box cgroups: parsing the host's layout, and real cgroups on this host (v1 here) holding real
processes. The v2 path is checked against a directory laid out like a delegated cgroupfs: it
proves which files get which values, not that a kernel accepts them."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from openinspect.sandboxes.cgroups import (
    MIB,
    BoxLimits,
    Cgroups,
    read_mounts,
    read_own,
)

from .conftest import IN_CI

LIMITS = BoxLimits(memory_bytes=256 * MIB, pids_max=200, cpu_cores=0.25, cpu_weight=50)
HOST_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 31 0:39 /kube /sys/fs/cgroup/cpu\\040acct rw - cgroup cgroup rw,cpu,cpuacct
"""


def test_reads_the_hosts_hierarchies_and_own_cgroups() -> None:
    mounts = read_mounts(HOST_MOUNTINFO)
    by_point = {str(m.mount_point): m for m in mounts}
    assert set(by_point) == {
        "/sys/fs/cgroup/cpu",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup/cpu acct",
    }
    assert by_point["/sys/fs/cgroup/unified"].version == 2
    assert by_point["/sys/fs/cgroup/cpu acct"].controllers == {"cpu", "cpuacct"}
    assert by_point["/sys/fs/cgroup/cpu acct"].root == "/kube"
    own = read_own("9:name=systemd:/\n4:memory:/process_api/7a27\n2:cpu,cpuacct:/\n0::/\n")
    assert own["memory"] == "/process_api/7a27"
    assert own["cpuacct"] == "/" and own[""] == "/"


@pytest.fixture
def host_cgroups() -> Iterator[Cgroups]:
    cgroups = Cgroups.detect(f"openinspect-test-{uuid.uuid4().hex[:8]}")
    if cgroups.unenforced or not cgroups.parents:
        if IN_CI:
            pytest.fail(f"cgroups are required under CI=true: {cgroups.unenforced}")
        pytest.skip(f"this host gives no cgroups: {cgroups.unenforced}")
    yield cgroups
    cgroups.clean_leftovers()
    cgroups.remove_parents()


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "600"])


def test_a_box_cgroup_holds_its_limits_and_its_processes(host_cgroups: Cgroups) -> None:
    box = host_cgroups.create("sbx-limits", LIMITS)
    files = box.dirs
    if host_cgroups.version == 1:
        assert (files["memory"] / "memory.limit_in_bytes").read_text().strip() == str(256 * MIB)
        assert (files["pids"] / "pids.max").read_text().strip() == "200"
        assert (files["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "25000"
        assert (files["cpu"] / "cpu.shares").read_text().strip() == "512"
    else:
        assert (files[""] / "memory.max").read_text().strip() == str(256 * MIB)
        assert (files[""] / "pids.max").read_text().strip() == "200"
    process = sleeper()
    try:
        box.add(process.pid)
        assert process.pid in box.pids()
        cgroup_lines = Path(f"/proc/{process.pid}/cgroup").read_text()
        assert cgroup_lines.count("/sbx-limits") >= len(set(box.dirs.values()))
        assert box.exit_reason() is None  # no limit reached yet

        box.remove()

        assert process.wait(timeout=5) == -9
        assert not any(d.exists() for d in box.dirs.values())
    finally:
        process.kill()
        process.wait()


def test_a_restarted_server_cleans_up_only_its_own_leftovers(host_cgroups: Cgroups) -> None:
    other = Cgroups.detect(f"openinspect-test-{uuid.uuid4().hex[:8]}")
    mine, theirs = sleeper(), sleeper()
    try:
        host_cgroups.create("sbx-left", LIMITS).add(mine.pid)
        other_box = other.create("sbx-other", LIMITS)
        other_box.add(theirs.pid)

        restarted = Cgroups.detect(next(iter(host_cgroups.parents.values())).name)
        assert restarted.clean_leftovers() == 1

        assert mine.wait(timeout=5) == -9
        assert theirs.poll() is None  # another server's box is not touched
        assert theirs.pid in other_box.pids()
        other_box.remove()
        other.remove_parents()
    finally:
        for process in (mine, theirs):
            process.kill()
            process.wait()


def test_v2_delegated_cgroup_gets_the_v2_files(tmp_path: Path) -> None:
    fs = tmp_path / "cgroup2"
    own = fs / "system.slice" / "openinspect.service"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (own / "cgroup.subtree_control").write_text("cpu memory pids\n")
    proc_self = tmp_path / "proc-self"
    proc_self.mkdir()
    (proc_self / "mountinfo").write_text(
        f"30 23 0:26 / {fs} rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n"
    )
    (proc_self / "cgroup").write_text("0::/system.slice/openinspect.service\n")

    cgroups = Cgroups.detect("openinspect-x", proc_self=proc_self)
    box = cgroups.create("sbx-v2", LIMITS)

    assert cgroups.version == 2 and cgroups.unenforced == {}
    parent = own / "openinspect-x"
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    directory = parent / "sbx-v2"
    assert box.dirs == {"": directory}
    assert (directory / "memory.max").read_text() == str(256 * MIB)
    assert (directory / "pids.max").read_text() == "200"
    assert (directory / "cpu.max").read_text() == "25000 100000"
    assert (directory / "cpu.weight").read_text() == "50"
    (directory / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n")
    (directory / "pids.events").write_text("max 0\n")
    assert box.exit_reason() == "out of memory (limit 256 MiB)"


def test_no_cgroup_access_names_every_limit(tmp_path: Path) -> None:
    cgroups = Cgroups.detect("openinspect-x", proc_self=tmp_path / "missing")
    assert set(cgroups.unenforced) == {"memory", "processes", "cpu"}
    assert not cgroups.parents
