"""A kernel cgroup per sandbox: the memory, process and CPU limits that bind a box.

Each box gets a cgroup ``<own>/openinspect-<instance>/<sandbox id>`` under the server's own
cgroup in every hierarchy it uses, so whatever limits the host set on the server still bound its
boxes. ``<instance>`` is derived from the server's home directory: two servers (or two test runs)
on one host never touch each other's boxes, and a server cleans up only its own leftovers.

Both cgroup layouts are supported:

- **v2** (the unified hierarchy) where it is *delegated*: the server's own cgroup lists
  ``memory``, ``pids`` and ``cpu`` in ``cgroup.subtree_control`` (or lets us add them there, which
  the kernel refuses while the cgroup holds processes itself, as a server's own cgroup does
  unless systemd's ``Delegate=yes`` put the server in a leaf of its own). Files: ``memory.max``,
  ``memory.swap.max``, ``pids.max``, ``cpu.max``, ``cpu.weight``; reasons from
  ``memory.events`` and ``pids.events``.
- **v1**, one hierarchy per controller (``memory``, ``pids``, ``cpu``, ``cpuacct``), used when v2
  has none of the controllers. Files: ``memory.limit_in_bytes`` and ``memory.memsw.limit_in_bytes``
  (when swap accounting is on), ``pids.max``, ``cpu.cfs_quota_us``/``cpu.cfs_period_us``,
  ``cpu.shares``; reasons from ``memory.oom_control`` (``oom_kill``) and ``pids.events``.

Every limit that cannot be set on this host is named in :attr:`Cgroups.unenforced` with why.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from openinspect.settings import SandboxSettings

logger = logging.getLogger(__name__)

PROC_SELF = Path("/proc/self")
CFS_PERIOD_US = 100_000
"""The CFS period: a box may run ``cpus × 100 ms`` in every 100 ms."""
V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
V2_CONTROLLERS = ("memory", "pids", "cpu")
LIMITS = ("memory", "processes", "cpu")
"""The limits this module enforces, by the names :attr:`Cgroups.unenforced` uses."""
_CONTROLLER_OF = {"memory": "memory", "processes": "pids", "cpu": "cpu"}
EMPTY_TIMEOUT_S = 3.0
"""Time the processes of a killed box get to leave its cgroup before we give up removing it."""
MIB = 1024 * 1024


@dataclass(frozen=True)
class BoxLimits:
    """What one box may use; None means no limit."""

    memory_bytes: int | None
    pids_max: int | None
    cpu_cores: float | None
    cpu_weight: int | None

    @classmethod
    def from_settings(cls, sandbox: SandboxSettings, *, pids_max: int | None) -> BoxLimits:
        return cls(
            memory_bytes=sandbox.memory_mib * MIB if sandbox.memory_mib > 0 else None,
            pids_max=pids_max if pids_max and pids_max > 0 else None,
            cpu_cores=sandbox.cpus if sandbox.cpus > 0 else None,
            cpu_weight=min(max(sandbox.cpu_weight, 1), 10_000) if sandbox.cpu_weight else None,
        )


@dataclass(frozen=True)
class LimitHits:
    """How often a box ran into its limits (kernel counters)."""

    oom_kills: int = 0
    pids_refused: int = 0


def instance_name(home: Path) -> str:
    """The per-server directory name under the server's own cgroup."""
    digest = hashlib.sha256(str(home.expanduser().resolve()).encode()).hexdigest()[:12]
    return f"openinspect-{digest}"


def _unescape(path: str) -> str:
    """Mountinfo escapes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path


@dataclass(frozen=True)
class CgroupMount:
    """One mounted hierarchy: its version, controllers (v1), mount point and mount root."""

    version: int
    controllers: frozenset[str]
    mount_point: Path
    root: str


def read_mounts(mountinfo: str) -> list[CgroupMount]:
    """The cgroup hierarchies in a ``/proc/self/mountinfo`` text."""
    found = []
    for line in mountinfo.splitlines():
        before, sep, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        fstype, super_options = tail[0], tail[2].split(",")
        if fstype == "cgroup2":
            found.append(CgroupMount(2, frozenset(), Path(_unescape(fields[4])), fields[3]))
        elif fstype == "cgroup":
            controllers = frozenset(o for o in super_options if o in V1_CONTROLLERS)
            if controllers:
                found.append(CgroupMount(1, controllers, Path(_unescape(fields[4])), fields[3]))
    return found


def read_own(cgroup: str) -> dict[str, str]:
    """``/proc/self/cgroup`` as controller → path (the v2 entry under the key ``""``)."""
    own = {}
    for line in cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            own[""] = parts[2]
        for name in parts[1].split(","):
            if name:
                own[name] = parts[2]
    return own


def own_dir(mount: CgroupMount, own_path: str) -> Path | None:
    """Where the server's own cgroup is in ``mount``, or None if it is outside the mount."""
    root = mount.root.rstrip("/")
    if root and own_path != root and not own_path.startswith(root + "/"):
        return None
    return mount.mount_point / own_path[len(root) :].lstrip("/")


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _read_keyed(path: Path) -> dict[str, int]:
    """A flat keyed file (``key value`` per line) such as ``memory.events``."""
    values = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                values[key] = int(value)
    return values


@dataclass
class BoxCgroup:
    """The cgroup directories of one box (one per v1 hierarchy, or one v2 directory)."""

    version: int
    dirs: dict[str, Path]
    """v1: controller → directory; v2: ``""`` → the directory."""
    limits: BoxLimits
    _removed: bool = field(default=False, repr=False)

    def _dir(self, controller: str) -> Path | None:
        return self.dirs.get("" if self.version == 2 else controller)

    def add(self, pid: int) -> None:
        """Move ``pid`` (and so whatever it starts from now on) into the box's cgroups."""
        for directory in set(self.dirs.values()):
            _write(directory / "cgroup.procs", str(pid))

    def hits(self) -> LimitHits:
        """The kernel's counters of OOM kills and refused forks in this box."""
        memory, pids = self._dir("memory"), self._dir("pids")
        oom = 0
        if memory is not None:
            name = "memory.events" if self.version == 2 else "memory.oom_control"
            oom = _read_keyed(memory / name).get("oom_kill", 0)
        refused = _read_keyed(pids / "pids.events").get("max", 0) if pids is not None else 0
        return LimitHits(oom_kills=oom, pids_refused=refused)

    def exit_reason(self) -> str | None:
        """Why the box most likely died, from the counters: "out of memory (limit 512 MiB)"."""
        hits, reasons = self.hits(), []
        if hits.oom_kills and self.limits.memory_bytes:
            reasons.append(f"out of memory (limit {self.limits.memory_bytes // MIB} MiB)")
        if hits.pids_refused and self.limits.pids_max:
            reasons.append(f"process limit reached (limit {self.limits.pids_max})")
        return "; ".join(reasons) or None

    def cpu_usage_ns(self) -> int | None:
        """CPU time the box's processes used so far, in nanoseconds."""
        if self.version == 2:
            directory = self._dir("cpu")
            usec = _read_keyed(directory / "cpu.stat").get("usage_usec") if directory else None
            return usec * 1000 if usec is not None else None
        directory = self._dir("cpuacct")
        if directory is None:
            return None
        with contextlib.suppress(OSError, ValueError):
            return int((directory / "cpuacct.usage").read_text())
        return None

    def cpu_throttled(self) -> int:
        """How many CFS periods the box was throttled in (its quota was used up)."""
        directory = self._dir("cpu")
        return _read_keyed(directory / "cpu.stat").get("nr_throttled", 0) if directory else 0

    def pids(self) -> set[int]:
        found: set[int] = set()
        for directory in set(self.dirs.values()):
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (directory / "cgroup.procs").read_text().split()}
        return found

    def remove(self) -> None:
        """SIGKILL whatever is left in the box and remove its cgroups; idempotent."""
        if self._removed:
            return
        self._removed = True
        _kill_and_remove(list(set(self.dirs.values())))


def _kill_and_remove(dirs: list[Path]) -> None:
    deadline = time.monotonic() + EMPTY_TIMEOUT_S
    for directory in dirs:
        if not directory.is_dir():
            continue
        kill = directory / "cgroup.kill"  # v2 (Linux 5.14+): the whole subtree, atomically
        if kill.exists():
            with contextlib.suppress(OSError):
                _write(kill, "1")
        while True:
            try:
                left = (directory / "cgroup.procs").read_text().split()
            except OSError:
                left = []
            for pid in left:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            try:
                directory.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:  # EBUSY until the killed processes are reaped
                if time.monotonic() > deadline:
                    logger.warning("cannot remove the sandbox cgroup %s: %s", directory, exc)
                    break
                time.sleep(0.02)


class Cgroups:
    """The hierarchies this server can put boxes in, found once at provider start."""

    def __init__(
        self,
        version: int,
        parents: dict[str, Path],
        unenforced: dict[str, str],
        controllers: tuple[str, ...] = (),
    ) -> None:
        self.version = version
        self.controllers = controllers
        """v2: the controllers this server's parent passes on to its boxes."""
        self.parents = parents
        """v1: controller → this server's parent directory; v2: ``""`` → it."""
        self.unenforced = unenforced
        """Limit name (see :data:`LIMITS`) → why this host cannot enforce it."""

    @classmethod
    def detect(cls, instance: str, *, proc_self: Path = PROC_SELF) -> Cgroups:
        """Find a writable hierarchy for each controller and create this server's parent."""
        try:
            mounts = read_mounts((proc_self / "mountinfo").read_text())
            own = read_own((proc_self / "cgroup").read_text())
        except OSError as exc:
            why = f"cannot read the process's cgroups: {exc.strerror or exc}"
            return cls(0, {}, dict.fromkeys(LIMITS, why))
        v2 = next((m for m in mounts if m.version == 2 and "" in own), None)
        if v2 is not None:
            directory = own_dir(v2, own[""])
            available = _v2_controllers(directory) if directory else set()
            if available & set(V2_CONTROLLERS) and directory is not None:
                found = cls._detect_v2(directory / instance, _delegated(directory, available))
                found.remove_parents()
                return found
        found = cls._detect_v1(instance, mounts, own)
        # The probe leaves nothing behind: a parent is made again when a box needs it. One that
        # still holds boxes (a previous run's) stays, for clean_leftovers.
        found.remove_parents()
        return found

    @classmethod
    def _detect_v2(cls, parent: Path, available: set[str]) -> Cgroups:
        unenforced: dict[str, str] = {}
        wanted = tuple(c for c in V2_CONTROLLERS if c in available)
        found = cls(2, {"": parent}, unenforced, wanted)
        try:
            found._make_parent(parent)
        except OSError as exc:
            why = f"cannot create a cgroup under the server's own (v2): {exc.strerror or exc}"
            return cls(2, {}, dict.fromkeys(LIMITS, why))
        for limit in LIMITS:
            if _CONTROLLER_OF[limit] not in wanted:
                unenforced[limit] = (
                    f"the {_CONTROLLER_OF[limit]} controller is not delegated to the server's "
                    "cgroup (cgroup v2: add it to the parent's cgroup.subtree_control; systemd: "
                    "Delegate=yes)"
                )
        return found

    @classmethod
    def _detect_v1(cls, instance: str, mounts: list[CgroupMount], own: dict[str, str]) -> Cgroups:
        parents: dict[str, Path] = {}
        why_not: dict[str, str] = {}
        for controller in V1_CONTROLLERS:
            mount = next(
                (m for m in mounts if m.version == 1 and controller in m.controllers), None
            )
            directory = own_dir(mount, own.get(controller, "/")) if mount else None
            if directory is None:
                why_not[controller] = f"no {controller} cgroup hierarchy is mounted"
                continue
            try:
                (directory / instance).mkdir(exist_ok=True)
            except OSError as exc:
                why_not[controller] = (
                    f"cannot create a {controller} cgroup under the server's own (v1): "
                    f"{exc.strerror or exc}"
                )
                continue
            parents[controller] = directory / instance
        unenforced = {
            limit: why_not[_CONTROLLER_OF[limit]]
            for limit in LIMITS
            if _CONTROLLER_OF[limit] in why_not
        }
        return cls(1, parents, unenforced)

    def create(self, sandbox_id: str, limits: BoxLimits) -> BoxCgroup:
        """Create the box's cgroups and set its limits. Raises ``OSError`` when the kernel
        refuses (the caller fails the box: a box whose limits could not be set does not run)."""
        if self.version == 2:
            dirs = {"": self.parents[""] / sandbox_id} if "" in self.parents else {}
        else:
            dirs = {c: p / sandbox_id for c, p in self.parents.items()}
        box = BoxCgroup(self.version, dirs, limits)
        try:
            for directory in set(dirs.values()):
                if not directory.parent.is_dir():  # removed when the last box went
                    self._make_parent(directory.parent)
                directory.mkdir()
            _apply(box, limits)
        except OSError:
            box.remove()
            raise
        return box

    def _make_parent(self, parent: Path) -> None:
        parent.mkdir(exist_ok=True)
        if self.version == 2:  # it holds no process itself: its children get every controller
            wanted = self.controllers
            _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))

    def remove_parents(self) -> None:
        """Remove this server's parent directories once no box is left in them."""
        for parent in set(self.parents.values()):
            with contextlib.suppress(OSError):
                parent.rmdir()

    def clean_leftovers(self) -> int:
        """Kill and remove boxes a previous run of this server left behind; returns how many."""
        found = [
            child
            for parent in set(self.parents.values())
            if parent.is_dir()
            for child in parent.iterdir()
            if child.is_dir()
        ]
        _kill_and_remove(found)
        return len({child.name for child in found})


def _v2_controllers(directory: Path, name: str = "cgroup.controllers") -> set[str]:
    with contextlib.suppress(OSError):
        return set((directory / name).read_text().split())
    return set()


def _delegated(own: Path, available: set[str]) -> set[str]:
    """The controllers the server's own v2 cgroup passes on to its children, enabling the
    missing ones where the kernel allows (it refuses while ``own`` holds processes itself)."""
    enabled = _v2_controllers(own, "cgroup.subtree_control")
    missing = [c for c in V2_CONTROLLERS if c in available and c not in enabled]
    if missing:
        try:
            _write(own / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
        except OSError as exc:
            logger.info("cannot enable %s for the server's cgroup: %s", missing, exc)
        enabled = _v2_controllers(own, "cgroup.subtree_control")
    return enabled


def _apply(box: BoxCgroup, limits: BoxLimits) -> None:
    """Write ``limits`` into the box's files (memory first: a v1 memsw limit must not be lower)."""
    memory, pids, cpu = box._dir("memory"), box._dir("pids"), box._dir("cpu")
    if box.version == 2:
        if memory is not None and limits.memory_bytes:
            _write(memory / "memory.max", str(limits.memory_bytes))
            if (memory / "memory.swap.max").exists():
                _write(memory / "memory.swap.max", "0")
        if pids is not None and limits.pids_max:
            _write(pids / "pids.max", str(limits.pids_max))
        if cpu is not None and limits.cpu_cores:
            _write(cpu / "cpu.max", f"{int(limits.cpu_cores * CFS_PERIOD_US)} {CFS_PERIOD_US}")
        if cpu is not None and limits.cpu_weight:
            _write(cpu / "cpu.weight", str(limits.cpu_weight))
        return
    if memory is not None and limits.memory_bytes:
        _write(memory / "memory.limit_in_bytes", str(limits.memory_bytes))
        if (memory / "memory.memsw.limit_in_bytes").exists():  # swap accounting is on
            _write(memory / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
    if pids is not None and limits.pids_max:
        _write(pids / "pids.max", str(limits.pids_max))
    if cpu is not None and limits.cpu_cores:
        _write(cpu / "cpu.cfs_period_us", str(CFS_PERIOD_US))
        _write(cpu / "cpu.cfs_quota_us", str(int(limits.cpu_cores * CFS_PERIOD_US)))
    if cpu is not None and limits.cpu_weight:
        _write(cpu / "cpu.shares", str(max(2, limits.cpu_weight * 1024 // 100)))
