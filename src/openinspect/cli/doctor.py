"""``openinspect doctor``: check what openinspect needs on this machine, and say how to fix it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass

from rich.console import Console

from openinspect.agent.models import ModelRegistry
from openinspect.sandboxes.boxcheck import box_facts
from openinspect.sandboxes.bwrap import probe_bwrap
from openinspect.sandboxes.limits import TMP_LIMIT, unenforced_limits
from openinspect.settings import Settings
from openinspect.store import Store


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


def _version(*argv: str) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else None


async def checks(settings: Settings) -> list[Check]:
    found: list[Check] = []
    git = _version("git", "--version")
    found.append(
        Check("git", git is not None, git or "not found", None if git else "apt-get install git")
    )
    problem = probe_bwrap()
    works = problem is None
    found.append(
        Check(
            "bubblewrap",
            works,
            "namespaces work" if works else str(problem),
            None
            if works
            else (
                "apt-get install bubblewrap (or allow unprivileged user namespaces:"
                " sysctl kernel.unprivileged_userns_clone=1); until then sandboxes "
                "fall back to the non-isolating 'process' provider"
            ),
        )
    )
    if works:
        found += box_checks(settings)
    python = _version(settings.sandbox.python, "--version")
    found.append(
        Check(
            "sandbox python",
            python is not None,
            f"{settings.sandbox.python}: {python or 'not found'}",
            None if python else "apt-get install python3 (the runtime runs on it)",
        )
    )
    try:
        store = await Store.open(settings.resolved_database_url)
        await store.close()
        found.append(Check("database", True, settings.resolved_database_url))
    except Exception as exc:  # any failure here is the finding
        found.append(
            Check(
                "database",
                False,
                f"{settings.resolved_database_url}: {exc}",
                "Check OPENINSPECT_DATABASE_URL and that the server is running",
            )
        )
    available = [m.id for m in ModelRegistry(settings).catalog() if m.available]
    found.append(
        Check(
            "models",
            bool(available),
            ", ".join(available) if available else "no provider key configured",
            None
            if available
            else "Set ANTHROPIC_API_KEY or OPENAI_API_KEY, or "
            "OPENINSPECT_MODELS__OPENAI_COMPATIBLE_BASE_URL; `openinspect demo` works without one",
        )
    )
    found += limit_checks(settings, bwrap_works=works)
    return found


LIMIT_FIXES = {
    "memory": "run the server where it may create cgroups: root with cgroup v1, or a delegated "
    "cgroup v2 subtree (systemd: Delegate=yes)",
    "processes": "as for memory: the pids controller",
    "cpu": "as for memory: the cpu controller",
    TMP_LIMIT: "install bubblewrap 0.5 or later",
    "workspace disk": "run the server as root with loop devices and e2fsprogs, or set "
    "OPENINSPECT_SANDBOX__WORKSPACE_MIB=0 to accept unbounded workspaces",
}


def limit_checks(settings: Settings, *, bwrap_works: bool) -> list[Check]:
    """One line per box limit: enforced on this host, or why not (warnings: the exit status
    does not depend on them)."""
    if not bwrap_works:
        return [Check("limits", False, "no box limit applies: sandboxes are not bwrap boxes")]
    sandbox = settings.sandbox
    wanted = {
        "memory": f"{sandbox.memory_mib} MiB" if sandbox.memory_mib > 0 else None,
        "processes": str(sandbox.max_processes) if sandbox.max_processes > 0 else None,
        "cpu": f"{sandbox.cpus:g} of {os.cpu_count()} cores" if sandbox.cpus > 0 else None,
        TMP_LIMIT: f"{sandbox.tmp_mib} MiB" if sandbox.tmp_mib > 0 else None,
        "workspace disk": f"{sandbox.workspace_mib} MiB" if sandbox.workspace_mib > 0 else None,
    }
    unenforced = unenforced_limits(settings)
    found = []
    for name, value in wanted.items():
        if value is None:
            found.append(Check(f"limit: {name}", False, "off in the settings"))
        elif name in unenforced:
            why = f"{value} is not enforced: {unenforced[name]}"
            found.append(Check(f"limit: {name}", False, why, LIMIT_FIXES.get(name)))
        else:
            found.append(Check(f"limit: {name}", True, f"{value} per box"))
    return found


BOX_WARNINGS = frozenset({"box host paths"})
"""Box findings that weaken a box without breaking it: reported, not failing the doctor."""


def box_checks(settings: Settings) -> list[Check]:
    """How bwrap boxes run here, from a real test box: who they are on the host, whether the
    kernel knobs and nested user namespaces are closed, what of the host they can still see."""
    facts = box_facts(settings.sandbox.box_user)
    if facts.error is not None or facts.user is None:
        return [Check("box", False, facts.error or "no box could be started")]
    user = facts.user
    who = f"uid {user.uid} ({user.name})"
    return [
        Check(
            "box user",
            user.uid != 0 and facts.uid_in_box == user.uid,
            f"boxes run as host {who}, "
            + ("a dedicated user (the server is root)" if user.switch else "the server's own user"),
            None if user.uid != 0 else "set OPENINSPECT_SANDBOX__BOX_USER to an unprivileged user",
        ),
        Check(
            "box kernel knobs",
            bool(facts.knobs_read_only),
            "/proc/sys and the other kernel knobs are read-only in a box"
            if facts.knobs_read_only
            else "a box can open /proc/sys for writing",
            None if facts.knobs_read_only else "report this: boxes bind /proc/sys read-only",
        ),
        Check(
            "box nested user namespaces",
            bool(facts.nested_userns_refused),
            ("refused" + (" (bwrap --disable-userns)" if facts.nested_userns_flag else ""))
            if facts.nested_userns_refused
            else "a box may create user namespaces of its own",
            None
            if facts.nested_userns_refused
            else "install bubblewrap 0.8 or later, which can forbid them (--disable-userns)",
        ),
        Check(
            "box host paths",
            False,
            "a box's /proc/self/mountinfo shows the host path of its workspace (its bind mount's "
            "source); nothing else of the host is named in a box",
            "run the server as root with workspace images, whose mounts show '/' instead",
        ),
    ]


async def run_doctor(console: Console, *, json_mode: bool) -> int:
    results = await checks(Settings())
    if json_mode:
        for check in results:
            sys.stdout.write(json.dumps(asdict(check)) + "\n")
    else:
        for check in results:
            mark = "[green]✔[/]" if check.ok else "[red]✘[/]"
            console.print(f"{mark} [bold]{check.name}[/]: {check.detail}")
            if check.fix:
                console.print(f"    [dim]fix: {check.fix}[/]")
    # Model keys are optional (the demo and scripted models need none). Limits and box
    # warnings weaken a box without breaking it (a laptop cannot mount images as non-root).
    return 0 if all(c.ok for c in results if c.name != "models" and not _warning(c)) else 1


def _warning(check: Check) -> bool:
    return check.name in BOX_WARNINGS or check.name == "limits" or check.name.startswith("limit: ")
