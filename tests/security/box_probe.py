"""Plays the hostile agent in a real bwrap box and reports what it could see and do, as JSON.

``python -m tests.security.box_probe <root> <report.json>`` starts a real bridge, a real origin
and a real :class:`~openinspect.sandboxes.bwrap.BwrapProvider` box under ``<root>`` (which the
running user must own), runs :data:`IN_BOX` in the box as an agent's command would run, adds
the host's view of the box's processes and the host paths that must not show, and writes the
report. The tests run it as root (a root server) and, through ``setpriv``, as an unprivileged
uid (an ordinary server), so both cases exercise the same code.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import site
import sys
import sysconfig
from dataclasses import replace
from pathlib import Path
from typing import Any

import websockets

import openinspect
from openinspect.runtime.address import unix_url
from openinspect.sandboxes.base import SandboxSpec
from openinspect.sandboxes.bridge import BridgeHub
from openinspect.sandboxes.bwrap import BwrapProvider
from openinspect.sandboxes.staging import workspace_mount
from openinspect.settings import Settings
from tests.sandboxes.conftest import make_origin, serve_bridge

BOOT_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 120.0
REPORT_NAME = "probe-report.json"

IN_BOX = (
    r"""
import json, os, stat, subprocess

report = {"uid": os.getuid(), "gid": os.getgid()}
for name in ("uid_map", "gid_map"):
    with open(f"/proc/self/{name}") as f:
        report[name] = f.read()

# Every kernel knob under /proc: none may open for writing (opening writes nothing).
checked, writable = 0, []
for base in ("/proc/sys", "/proc/irq", "/proc/bus", "/proc/fs", "/proc/sysrq-trigger"):
    if os.path.isfile(base):
        paths = [base]
    else:
        paths = [os.path.join(r, f) for r, _, files in os.walk(base) for f in files]
    for path in paths:
        checked += 1
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            continue
        os.close(fd)
        writable.append(path)
report["knobs_checked"], report["knobs_writable"] = checked, writable

masked = {}
for name in ("kcore", "kallsyms", "keys", "timer_list", "sched_debug"):
    try:
        with open(f"/proc/{name}", "rb") as f:
            masked[name] = len(f.read(4096))
    except OSError as exc:
        masked[name] = str(exc)
report["masked"] = masked

report["unshare_user"] = subprocess.run(
    ["unshare", "--user", "--map-root-user", "true"], capture_output=True
).returncode

processes, outputs = {}, {}
for entry in sorted(os.listdir("/proc")):
    if not entry.isdigit():
        continue
    seen = {}
    for part in ("cmdline", "environ"):
        try:
            with open(f"/proc/{entry}/{part}", "rb") as f:
                seen[part] = f.read().decode(errors="replace").replace("\0", " ")
        except OSError as exc:
            seen[part] = f"<{exc.strerror}>"
    links = {}
    for link in ("cwd", "root", "exe"):
        try:
            links[link] = os.readlink(f"/proc/{entry}/{link}")
        except OSError as exc:
            links[link] = f"<{exc.strerror}>"
    try:
        for fd in os.listdir(f"/proc/{entry}/fd"):
            try:
                links[f"fd/{fd}"] = os.readlink(f"/proc/{entry}/fd/{fd}")
            except OSError as exc:
                links[f"fd/{fd}"] = f"<{exc.strerror}>"
    except OSError as exc:
        links["fd"] = f"<{exc.strerror}>"
    seen["links"] = links
    processes[entry] = seen
    # What a process's output is: the log file would be a regular file to reopen.
    for fd in ("1", "2"):
        try:
            mode = os.stat(f"/proc/{entry}/fd/{fd}").st_mode
            outputs[f"{entry}/{fd}"] = "fifo" if stat.S_ISFIFO(mode) else oct(mode)
        except OSError as exc:
            outputs[f"{entry}/{fd}"] = f"<{exc.strerror}>"
report["processes"], report["outputs"] = processes, outputs
with open("/proc/self/mountinfo") as f:
    report["mountinfo"] = f.read()
with open("/proc/net/unix") as f:
    report["net_unix"] = f.read()
report["env"] = dict(os.environ)
with open("/workspace/"""
    + REPORT_NAME
    + r"""", "w") as f:
    json.dump(report, f)
"""
)


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process under it, from the host's ``/proc``."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def _host_view(pid: int) -> dict[str, Any]:
    """How the host sees a box process: its real uid and its uid map (ids as the host's)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        return {
            "uids": [int(x) for x in uid_line.split()[1:]],
            "uid_map": Path(f"/proc/{pid}/uid_map").read_text(),
        }
    except (OSError, StopIteration):
        return {}


def _init_pid(pidfd: int) -> int:
    for line in Path(f"/proc/self/fdinfo/{pidfd}").read_text().splitlines():
        if line.startswith("Pid:"):
            return int(line.split()[1])
    raise AssertionError("no pid in the pidfd's fdinfo")


RESTART = (
    "set -e; cd /workspace; echo box >> from-server.txt; echo again >> " + REPORT_NAME + "; "
    "git -C repo add -A; git -C repo -c user.email=b@x -c user.name=box commit -qm restarted; "
    "mkdir -p made/deep; mv made moved; rm -r moved; git -C repo log --format=%s -1"
)
"""What a second box of the same workspace does: appends to what the server and the first box
wrote, commits in the clone the first box made, renames and removes a directory."""


async def restart(
    provider: BwrapProvider, bridge: Any, spec: SandboxSpec, report: dict[str, Any]
) -> None:
    """Start a second box on the first box's workspace, and record what it and the host see."""
    workspace = spec.workspace_dir
    (workspace / "from-server.txt").write_text("server\n")
    sandbox_id = f"{spec.sandbox_id}-again"
    conn = bridge.hub.register(sandbox_id, spec.token)
    spec = replace(spec, sandbox_id=sandbox_id)
    handle = await provider.create(spec)
    try:
        await conn.wait_ready(BOOT_TIMEOUT_S)
        result = await conn.exec(RESTART, timeout_s=PROBE_TIMEOUT_S)
        report["restart"] = {"exit": result.exit_code, "out": result.stdout + result.stderr}
    finally:
        await provider.destroy(handle)
    # The host's view of it: plain files of the box user, and a clone the server's git reads.
    report["restart"]["from_server"] = (workspace / "from-server.txt").read_text()
    # A staged box's clone borrows the mirror's objects at the box's path of them: host git
    # names the host's (docs/sandboxes.md, "What a box costs").
    borrowed = {"GIT_ALTERNATE_OBJECT_DIRECTORIES": str(Path(spec.clone_source) / "objects")}
    git = await asyncio.create_subprocess_exec(
        "git",
        "-c",
        "safe.directory=*",
        "-C",
        str(workspace / "repo"),
        "log",
        "--format=%s",
        "-2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **borrowed},
    )
    report["restart"]["host_log"] = (await git.communicate())[0].decode()
    report["restart"]["owners"] = sorted(
        {(p.lstat().st_uid, p.lstat().st_gid) for p in workspace.rglob("*")}
    )
    report["restart"]["left"] = sorted(p.name for p in workspace.iterdir())


async def probe(root: Path) -> dict[str, Any]:
    origin = make_origin(root)
    settings = Settings(home=root / "home")
    provider = BwrapProvider.from_settings(settings)
    async with serve_bridge(BridgeHub(heartbeat_timeout_s=30)) as bridge:
        sandbox_id = f"sbx-probe-{secrets.token_hex(4)}"
        token = secrets.token_urlsafe(24)
        conn = bridge.hub.register(sandbox_id, token)
        spec = SandboxSpec(
            sandbox_id=sandbox_id,
            workspace_dir=settings.workspaces_dir / sandbox_id,
            clone_source=str(origin.bare),
            clone_source_is_path=True,
            base_branch="main",
            token=token,
            bridge_url=unix_url(str(bridge.socket_path)),
            heartbeat_s=1.0,
        )
        handle = await provider.create(spec)
        try:
            await conn.wait_ready(BOOT_TIMEOUT_S)
            await conn.write_file("probe.py", IN_BOX)
            result = await conn.exec("python3 probe.py", timeout_s=PROBE_TIMEOUT_S)
            if result.exit_code != 0:
                raise AssertionError(f"the probe failed: {result.stderr[-2000:]}")
            written = spec.workspace_dir / REPORT_NAME
            report: dict[str, Any] = json.loads(written.read_text())
            report["written_by"] = [written.stat().st_uid, written.stat().st_gid]
            init = _init_pid(provider._inits[sandbox_id])
            report["host"] = {str(pid): _host_view(pid) for pid in _descendants(init)}
            report["bwrap_host"] = _host_view(handle.pid)
        finally:
            await provider.destroy(handle)
        assert handle.log_path is not None
        report["log"] = handle.log_path.read_text(errors="replace")
        await restart(provider, bridge, spec, report)
    report["server_uid"] = os.geteuid()
    report["box_uid"] = provider.box_user().uid
    report["workspace_mount"] = workspace_mount(
        settings.workspaces_dir, settings.sandbox.workspace_mib
    ).kind
    report["workspaces_left"] = sorted(p.name for p in settings.workspaces_dir.iterdir())
    package_dir = Path(openinspect.__file__).parent
    needles = {
        str(root),
        str(settings.home_dir),
        str(settings.workspaces_dir),
        str(spec.workspace_dir),
        str(origin.bare),
        str(bridge.socket_path),
        str(bridge.socket_path.parent),
        str(handle.log_path),
        str(package_dir),
        str(package_dir.parent),
        str(Path(websockets.__file__).parent),
        sys.prefix,
        sys.base_prefix,
        sysconfig.get_paths()["purelib"],
        *site.getsitepackages(),
    }
    # The box sees /usr by design; everything else of the host must stay unnamed.
    report["needles"] = sorted(n for n in needles if n != "/usr" and not n.startswith("/usr/"))
    report["workspace"] = str(spec.workspace_dir)
    report["bridge_socket"] = str(bridge.socket_path)
    return report


def main() -> int:
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    report = asyncio.run(probe(root))
    out.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
