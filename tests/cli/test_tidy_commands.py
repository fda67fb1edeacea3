"""``sessions archive``, ``unarchive``, ``rename`` and ``list --archived``, against a real
server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from openinspect.testing.server import ServerProcess
from tests.cli.helpers import cli

pytestmark = pytest.mark.e2e


def test_archive_unarchive_rename_and_the_archived_list(
    server: ServerProcess, origin: Path
) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        made = http.post("/api/sessions", json={"repo": str(origin)})
        assert made.status_code == 201, made.text
        sid = made.json()["session"]["id"]

        renamed = cli("sessions", "rename", sid, "Tidy the adder", server=server)
        assert renamed.returncode == 0, renamed.stderr
        assert renamed.stdout.strip() == f"renamed {sid}"
        assert http.get(f"/api/sessions/{sid}").json()["session"]["title"] == "Tidy the adder"

        archived = cli("sessions", "archive", sid, "--json", server=server)
        assert archived.returncode == 0, archived.stderr
        assert json.loads(archived.stdout)["status"] == "archived"
        hidden = cli("sessions", "list", "--json", server=server).stdout
        assert sid not in hidden
        shown = cli("sessions", "list", "--archived", "--json", server=server).stdout
        assert [json.loads(line)["id"] for line in shown.splitlines()] == [sid]

        back = cli("sessions", "unarchive", sid, server=server)
        assert back.returncode == 0 and back.stdout.strip() == f"unarchived {sid}"
        assert sid in cli("sessions", "list", "--json", server=server).stdout

        bad = cli("sessions", "rename", sid, "two\nlines", server=server)
        assert bad.returncode != 0 and "printable" in bad.stderr
        unknown = cli("sessions", "archive", "ses_nope", server=server)
        assert unknown.returncode != 0 and "session_not_found" in unknown.stderr
