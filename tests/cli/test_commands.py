"""``repos``, ``sessions cancel`` and the session table, against a real server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess
from tests.cli.helpers import cli

pytestmark = pytest.mark.e2e
QUEUED = re.compile(r"^queued (prm_\S+)$", re.MULTILINE)
SLOW_TURN_MS = 60_000


def api(server: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=30
    )


def test_repos_are_listed_added_and_used_by_name(server: ServerProcess, origin: Path) -> None:
    empty = cli("repos", server=server)
    assert empty.returncode == 0 and "no registered repos" in empty.stdout

    # A relative path is resolved here, before the server sees it.
    added = cli("repos", "add", "sample", "origin.git", server=server, cwd=origin.parent)
    assert added.returncode == 0, added.stderr
    as_json = cli("repos", "--json", server=server).stdout
    listed = [json.loads(line) for line in as_json.splitlines()]
    assert [(r["name"], r["url"]) for r in listed] == [("sample", str(origin.resolve()))]
    table = cli("repos", server=server, env={"COLUMNS": "40"})
    assert listed[0]["id"] in table.stdout  # the id whole, however narrow the terminal

    # The review bot's settings of the repo: changed by the admin, what is not given stays.
    changed = cli(
        "repos",
        "review",
        "sample",
        "--auto-review",
        "off",
        "--instructions",
        "Focus on tests",
        server=server,
    )
    assert changed.returncode == 0, changed.stderr
    assert "auto-review:  off" in changed.stdout and "Focus on tests" in changed.stdout
    shown = cli("repos", "review", "sample", "--model", "", "--json", server=server)
    assert json.loads(shown.stdout)["effective"]["instructions"] == "Focus on tests"
    bad = cli("repos", "review", "sample", "--auto-review", "maybe", server=server)
    assert bad.returncode == 2 and "on, off or default" in bad.stderr

    # The repo's own egress allow-list: added to, taken from, bad entries refused.
    egress = cli(
        "repos",
        "egress",
        "sample",
        "--allow",
        "github.com",
        "--allow",
        "*.Corp.example",
        server=server,
    )
    assert egress.returncode == 0, egress.stderr
    assert "this repo:  *.corp.example, github.com" in egress.stdout
    assert "pypi.org" in egress.stdout  # the server's, for every repo
    removed = cli("repos", "egress", "sample", "--remove", "github.com", "--json", server=server)
    assert json.loads(removed.stdout)["allow"] == ["*.corp.example"]
    wrong = cli("repos", "egress", "sample", "--allow", "http://x", server=server)
    assert wrong.returncode != 0 and "invalid_input" in wrong.stderr

    # The repo's warm pool: set, shown, refused past the server's maximum, turned off.
    pooled = cli("repos", "pool", "set", "sample", "1", server=server)
    assert pooled.returncode == 0, pooled.stderr
    assert "warm pool of sample: 1 ready box(es) per server" in pooled.stdout
    shown = json.loads(cli("repos", "pool", "show", "sample", "--json", server=server).stdout)
    assert (shown["size"], shown["max_size"], shown["base_branch"]) == (1, 10, "main")
    too_many = cli("repos", "pool", "set", "sample", "11", server=server)
    assert too_many.returncode != 0 and "invalid_input" in too_many.stderr
    off = cli("repos", "pool", "set", "sample", "0", server=server)
    assert off.returncode == 0 and "warm pool of sample: off" in off.stdout

    unknown = cli("run", "x", "--repo", "nosuch", server=server, cwd=origin.parent)
    assert unknown.returncode == 2
    assert "repo_not_found" in unknown.stderr
    assert f"no directory {origin.parent.resolve() / 'nosuch'}" in unknown.stderr


def test_queued_prompts_are_cancelled_and_ids_are_whole_in_the_list(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset({"turns": [{"text": "Slow.", "delay_ms": SLOW_TURN_MS}]})
    with api(server) as http:
        created = http.post("/api/sessions", json={"repo": str(origin), "prompt": "first"})
        assert created.status_code == 201, created.text
        sid = created.json()["session"]["id"]
        llm.wait_for_requests(1, timeout_s=120)  # the first prompt is running

        queued = []
        for text in ("second", "third"):
            done = cli("sessions", "prompt", sid, text, "--no-follow", server=server)
            assert done.returncode == 0, done.stderr
            match = QUEUED.search(done.stdout)
            assert match is not None, done.stdout
            queued.append(match.group(1))
        one = cli("sessions", "cancel", sid, queued[0], server=server)
        assert one.returncode == 0 and f"cancelled {queued[0]}" in one.stdout
        rest = cli("sessions", "cancel", sid, server=server)
        assert rest.returncode == 0 and rest.stdout.split() == ["cancelled", queued[1]]
        again = cli("sessions", "cancel", sid, queued[0], server=server)
        assert again.returncode == 2 and "prompt_not_cancellable" in again.stderr
        queue = http.get(f"/api/sessions/{sid}").json()["queue"]
        assert [p["status"] for p in queue] == ["running"]  # only the first is left

        listed = cli("sessions", "list", server=server, env={"COLUMNS": "50"})
        assert listed.returncode == 0
        assert sid in listed.stdout
        assert cli("sessions", "stop", sid, server=server).stdout.strip() == "stopped"
