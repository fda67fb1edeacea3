"""``openinspect doctor`` names every box limit and whether this host enforces it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
