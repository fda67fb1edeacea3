"""``repos image``: turned on, the server's builder makes the repo's first image by itself; a
build asked for runs whatever the interval; builds and their logs are listed; against a real
server with bwrap boxes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess
from tests.cli.conftest import SERVER_START_TIMEOUT_S
from tests.cli.helpers import cli
from tests.conftest import server_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]


@pytest.fixture
def server(tmp_path: Path, llm: ScriptedLLMServer) -> Iterator[ServerProcess]:
    env = server_env(llm, OPENINSPECT_SANDBOX__IMAGES__CHECK_INTERVAL_S="0.5")
    proc = ServerProcess(tmp_path / "home", env=env)
    proc.start(timeout_s=SERVER_START_TIMEOUT_S)
    try:
        yield proc
    finally:
        proc.stop()


def _builds(server: ServerProcess) -> list[dict[str, Any]]:
    done = cli("repos", "image", "builds", "sample", "--json", server=server)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _until_finished(server: ServerProcess, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        builds = _builds(server)
        if len(builds) >= count and builds[0]["status"] not in ("queued", "running"):
            return builds
        time.sleep(0.5)
    raise AssertionError(f"no finished build: {_builds(server)}")


def test_a_repos_image_is_turned_on_built_and_its_log_read(
    server: ServerProcess, origin: Path
) -> None:
    assert cli("repos", "add", "sample", str(origin), server=server).returncode == 0
    shown = cli("repos", "image", "show", "sample", server=server)
    assert shown.returncode == 0 and "image of sample: off" in shown.stdout, shown.stderr
    refused = cli("repos", "image", "build", "sample", server=server)
    assert refused.returncode != 0 and "conflict" in refused.stderr

    on = cli("repos", "image", "enable", "sample", server=server)
    assert on.returncode == 0 and "image of sample: on" in on.stdout, on.stderr
    [first] = _until_finished(server, 1)  # the builder made the first one by itself
    assert (first["status"], first["trigger"], first["good"]) == ("succeeded", "first", True)
    log = cli("repos", "image", "log", "sample", first["id"], server=server)
    assert log.returncode == 0, log.stderr
    assert "succeeded" in log.stdout and "cloning branch main" in log.stdout
    assert str(server.home) not in log.stdout

    asked = cli("repos", "image", "build", "sample", server=server)
    assert asked.returncode == 0 and "(manual)" in asked.stdout, asked.stderr
    newest, older = _until_finished(server, 2)
    assert (newest["status"], newest["trigger"]) == ("succeeded", "manual")
    assert older["id"] == first["id"]
    table = cli("repos", "image", "builds", "sample", server=server)
    assert newest["id"] in table.stdout and "in use" in table.stdout
    shown = cli("repos", "image", "show", "sample", server=server)
    assert f"current image:    {newest['id']}" in shown.stdout

    off = cli("repos", "image", "disable", "sample", "--json", server=server)
    assert json.loads(off.stdout)["enabled"] is False
