"""``openinspect limits`` and ``openinspect skills`` against a real server: limits are set per
scope and removed with 'none', a bad amount is refused before any request; a skill's body comes
from a file or standard input and is listed by name and description."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openinspect.testing.server import ServerProcess
from tests.cli.helpers import cli

pytestmark = pytest.mark.e2e


def test_limits_and_skills_round_trip(server: ServerProcess, origin: Path, tmp_path: Path) -> None:
    assert cli("repos", "add", "sample", str(origin), server=server).returncode == 0
    for args in (("global", "5"), ("repo", "sample", "$2.50"), ("user-daily", "20")):
        done = cli("limits", "set", *args, server=server)
        assert done.returncode == 0, done.stderr
    shown = cli("limits", "show", "--json", server=server)
    rows = {
        (x["scope"], x["target"], x["usd"]) for x in map(json.loads, shown.stdout.split("\n")[:-1])
    }
    assert rows == {("global", None, 5.0), ("repo", "sample", 2.5), ("user-daily", None, 20.0)}
    removed = cli("limits", "set", "repo", "sample", "none", server=server)
    assert removed.returncode == 0 and "sample" not in removed.stdout
    for bad in (("global", "lots"), ("repo", "5"), ("planet", "5"), ("global", "-1")):
        refused = cli("limits", "set", *bad, server=server)
        assert refused.returncode != 0, bad
        assert "Traceback" not in refused.stderr

    body = tmp_path / "release.md"
    body.write_text("Tag the release and write the notes.\n")
    made = cli(
        "skills",
        "set",
        "release",
        "-d",
        "How we release",
        "--from-file",
        str(body),
        server=server,
    )
    assert made.returncode == 0, made.stderr
    piped = cli(
        "skills",
        "set",
        "style",
        "-d",
        "Our style",
        "--repo",
        "sample",
        server=server,
        stdin_text="Be terse.\n",
    )
    assert piped.returncode == 0 and "repo sample" in piped.stdout, piped.stderr
    listed = cli("skills", "list", "--repo", "sample", server=server)
    assert "release" in listed.stdout and "How we release" in listed.stdout
    assert "style" in listed.stdout and "Be terse" not in listed.stdout
    gone = cli("skills", "delete", "style", "--repo", "sample", server=server)
    assert gone.returncode == 0, gone.stderr
    assert "style" not in cli("skills", "list", "--repo", "sample", server=server).stdout
