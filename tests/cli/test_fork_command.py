"""``sessions fork``, against a real server: the fork it prints is a new session started from
the source at the event, refused event numbers are the server's stable codes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from openinspect.testing.server import ServerProcess
from tests.cli.helpers import cli

pytestmark = pytest.mark.e2e


def test_fork_prints_the_new_session_and_refuses_a_bad_event(
    server: ServerProcess, origin: Path
) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        made = http.post("/api/sessions", json={"repo": str(origin), "title": "Source"})
        assert made.status_code == 201, made.text
        sid = made.json()["session"]["id"]

        forked = cli("sessions", "fork", sid, "--at", "1", server=server)
        assert forked.returncode == 0, forked.stderr
        assert forked.stdout.startswith(f"forked {sid} at event 1: ses_")
        fork_id = forked.stdout.split(": ", 1)[1].split()[0]
        shown = http.get(f"/api/sessions/{fork_id}").json()["session"]
        assert (shown["forked_from_id"], shown["forked_from_seq"]) == (sid, 1)
        assert shown["title"] == "Fork of Source" and shown["branch"] in forked.stdout

        named = cli(
            "sessions", "fork", sid, "--at", "1", "--title", "Plan B", "--json", server=server
        )
        assert named.returncode == 0, named.stderr
        assert json.loads(named.stdout)["title"] == "Plan B"

        past = cli("sessions", "fork", sid, "--at", "99", server=server)
        assert past.returncode != 0 and "fork_point_invalid" in past.stderr
        zero = cli("sessions", "fork", sid, "--at", "0", server=server)
        assert zero.returncode != 0
        unknown = cli("sessions", "fork", "ses_nope", "--at", "1", server=server)
        assert unknown.returncode != 0 and "session_not_found" in unknown.stderr
