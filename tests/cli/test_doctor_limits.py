"""``openinspect doctor`` names every box limit and whether this host enforces it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import openinspect
from openinspect.sandboxes.bwrap import probe_bwrap
from openinspect.sandboxes.limits import unenforced_limits
from openinspect.settings import Settings

from .test_cli import cli

LIMIT_NAMES = {"memory", "processes", "cpu", "box tmpfs (/tmp)", "workspace disk"}


def doctor(home: Path, **env: str) -> dict[str, dict[str, object]]:
    done = cli("doctor", "--json", env={"OPENINSPECT_HOME": str(home), **env})
    found = [json.loads(line) for line in done.stdout.splitlines()]
    return {c["name"].removeprefix("limit: "): c for c in found if c["name"].startswith("limit")}


def test_doctor_reports_each_limit_as_this_host_enforces_it(tmp_path: Path) -> None:
    if probe_bwrap() is not None:
        pytest.skip("no bwrap boxes here: the doctor says no limit applies")
    limits = doctor(tmp_path, OPENINSPECT_SANDBOX__WORKSPACE_MIB="0")
    # The same findings as the provider's own probe, which creates and removes real cgroups.
    unenforced = unenforced_limits(Settings(home=tmp_path))

    assert set(limits) == LIMIT_NAMES
    assert limits["workspace disk"] == {
        "name": "limit: workspace disk",
        "ok": False,
        "detail": "off in the settings",
        "fix": None,
    }
    for name in LIMIT_NAMES - {"workspace disk"}:
        check = limits[name]
        assert check["ok"] is (name not in unenforced), check
        if name in unenforced:
            assert unenforced[name] in str(check["detail"]) and check["fix"]


NON_ROOT_PROBE = """
import json, logging, sys
from pathlib import Path
from openinspect.cli.doctor import limit_checks
from openinspect.sandboxes.limits import BoxLimiter
from openinspect.settings import Settings
settings = Settings(home=Path(sys.argv[1]))
for check in limit_checks(settings, bwrap_works=True):
    print(json.dumps(check.__dict__))
logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(message)s")
BoxLimiter(settings)  # what the bwrap provider makes when the server starts
"""


def test_a_non_root_server_is_told_and_logs_which_limits_do_not_bind(tmp_path: Path) -> None:
    """The same checks in a real unprivileged process (nobody, through setpriv), with the
    system's Python on this checkout: it may create no cgroup and mount no image here."""
    system_python = Path("/usr/bin/python3")
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    probe = subprocess.run(
        [str(system_python), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if os.geteuid() != 0 or probe.stdout.strip() != str(sys.version_info[:2]):
        pytest.skip("needs root (to become nobody) and a system Python like the venv's")
    home = Path(tempfile.mkdtemp(prefix="oi-nobody-"))
    home.chmod(0o777)
    pythonpath = f"{Path(openinspect.__file__).parents[1]}:{site / 'site-packages'}"
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    clean_env = ["env", "-i", f"PYTHONPATH={pythonpath}", f"HOME={home}"]
    done = subprocess.run(
        [*as_nobody, *clean_env, str(system_python), "-c", NON_ROOT_PROBE, str(home)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    checks = {c["name"]: c for c in map(json.loads, done.stdout.splitlines())}

    disk = checks["limit: workspace disk"]
    assert disk["ok"] is False
    assert "does not run as root" in disk["detail"] and disk["fix"]
    for name in ("memory", "processes", "cpu"):
        check = checks[f"limit: {name}"]
        assert check["ok"] is False and "not enforced" in check["detail"], check
    assert checks["limit: box tmpfs (/tmp)"]["ok"] is True  # bwrap's --size needs no privilege
    # The server says the same in its log when it starts.
    logged = [line for line in done.stderr.splitlines() if "is not enforced" in line]
    assert len(logged) == 4, done.stderr
    assert any(line.startswith("WARNING sandbox workspace disk limit") for line in logged)
