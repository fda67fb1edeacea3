"""``openinspect automations``: create, list, show, edit, run, pause, resume, delete and runs,
against a real server; and how ``--condition`` reads."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from openinspect.automations.schedule import PRESETS
from openinspect.cli.automation_args import PRESETS as CLI_PRESETS
from openinspect.cli.automation_args import parse_condition
from openinspect.domain.automations import GithubEvent
from openinspect.errors import InvalidInput
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess
from tests.cli.helpers import cli, heavy, imported_modules

RUN_TIMEOUT_S = 120.0
FIRING = re.compile(r"^  \w{3} (\d{4}-\d\d-\d\d \d\d:\d\d[+-]\d\d:\d\d)$", re.MULTILINE)


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("$.level:equals:error", {"path": "$.level", "op": "equals", "value": "error"}),
        ("$.count:equals:3", {"path": "$.count", "op": "equals", "value": 3}),
        ('$.count:equals:"3"', {"path": "$.count", "op": "equals", "value": "3"}),
        ("$.ok:equals:true", {"path": "$.ok", "op": "equals", "value": True}),
        ("$.url:contains:https://x", {"path": "$.url", "op": "contains", "value": "https://x"}),
        ("$.tags[0:2]:contains:a", {"path": "$.tags[0:2]", "op": "contains", "value": "a"}),
        ("$.msg:matches:^a:[0-9]+$", {"path": "$.msg", "op": "matches", "value": "^a:[0-9]+$"}),
        ("$.n:matches:12", {"path": "$.n", "op": "matches", "value": "12"}),  # text, not 12
        ("$.x:equals:{}", {"path": "$.x", "op": "equals", "value": "{}"}),  # not a scalar
        ("$.issue.id:exists", {"path": "$.issue.id", "op": "exists"}),
        (
            "$[?@.kind == 'a:equals:b']:exists",
            {"path": "$[?@.kind == 'a", "op": "equals", "value": "b']:exists"},
        ),  # the first operator wins: such a path is written as JSON (below)
        (
            '{"path": "$[?@.k == \'a:equals:b\']", "op": "exists"}',
            {"path": "$[?@.k == 'a:equals:b']", "op": "exists"},
        ),
    ],
)
def test_a_condition_reads_as_written(text: str, condition: dict[str, Any]) -> None:
    assert parse_condition(text) == condition


@pytest.mark.parametrize(
    "text", ["$.level == error", "$.level:equal:error", ":exists", "{not json", '{"op": "exists"}']
)
def test_an_unreadable_condition_says_how_to_write_one(text: str) -> None:
    with pytest.raises(InvalidInput, match="condition") as refused:
        parse_condition(text)
    assert refused.value.hint is not None and "PATH:OP:VALUE" in refused.value.hint


def test_the_cli_knows_the_servers_presets_and_events() -> None:
    from typing import get_args

    from openinspect.cli.automation_args import GITHUB_EVENTS

    assert CLI_PRESETS == PRESETS
    assert get_args(GithubEvent) == GITHUB_EVENTS


def lines(done: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in done.stdout.splitlines()]


def wait_for_run(server: ServerProcess, automation_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        runs = lines(cli("automations", "runs", automation_id, "--json", server=server))
        if runs and runs[0]["status"] == status:
            return runs[0]
        assert time.monotonic() < deadline, runs
        time.sleep(0.5)


@pytest.mark.e2e
def test_a_schedule_is_made_shown_run_by_hand_paused_and_deleted(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path, tmp_path: Path
) -> None:
    llm.reset({"turns": [{"text": "Swept the dependencies."}]})
    task = tmp_path / "task.md"
    task.write_text("Sweep the dependencies.\nOpen nothing.")
    made = cli(
        "automations", "create", "--name", "Nightly  sweep", "--repo", str(origin),
        "--instructions-file", str(task), "--preset", "daily", "--tz", "Europe/Berlin",
        server=server,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = re.search(r"^created (aut_\S+): Nightly sweep$", made.stdout, re.MULTILINE)
    assert created is not None, made.stdout
    aid = created.group(1)
    assert "next firings (Europe/Berlin):" in made.stdout
    firings = [datetime.fromisoformat(f) for f in FIRING.findall(made.stdout)]
    assert len(firings) == 5
    assert all((f.hour, f.minute) == (0, 0) for f in firings)  # midnight in Berlin…
    assert {f.utcoffset() for f in firings} <= {
        datetime.fromisoformat("2026-01-01T00:00+01:00").utcoffset(),
        datetime.fromisoformat("2026-07-01T00:00+02:00").utcoffset(),
    }  # …in Berlin's offset
    assert "secret" not in made.stdout  # a schedule has none

    shown = cli("automations", "show", aid, server=server)
    assert shown.returncode == 0, shown.stderr
    assert "schedule daily: 0 0 * * * (Europe/Berlin)" in shown.stdout
    assert "status:       enabled" in shown.stdout
    assert "    Open nothing." in shown.stdout
    assert len(FIRING.findall(shown.stdout)) == 5
    as_json = lines(cli("automations", "show", aid, "--json", server=server))[0]
    assert as_json["trigger"] == {"kind": "schedule", "cron": "0 0 * * *", "tz": "Europe/Berlin",
                                  "preset": "daily"}  # fmt: skip
    assert as_json["concurrency"] == "skip"  # a schedule's default

    listed = cli("automations", "list", "--json", server=server, python_flags=("-X", "importtime"))
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert heavy(imported_modules(listed.stderr)) == []
    assert [(a["id"], a["last_run"]) for a in lines(listed)] == [(aid, None)]
    table = cli("automations", "list", server=server)
    assert re.search(rf"{aid} .*Nightly sweep.* enabled .* never", table.stdout), table.stdout

    started = cli("automations", "run", aid, server=server)
    assert started.returncode == 0, started.stderr
    match = re.search(r"^run (arn_\S+): \w+ · session (ses_\S+)$", started.stdout, re.MULTILINE)
    assert match is not None, started.stdout
    run_id, session_id = match.groups()
    done = wait_for_run(server, aid, "succeeded")
    assert (done["id"], done["trigger"], done["session_id"]) == (run_id, "manual", session_id)
    history = cli("automations", "runs", aid, server=server)
    assert re.search(rf"{run_id} .* manual .* succeeded .* {session_id}", history.stdout)
    session = json.loads(cli("sessions", "show", session_id, "--json", server=server).stdout
                         .splitlines()[0])  # fmt: skip
    assert (session["title"], session["origin"]) == ("[Auto] Nightly sweep", "schedule")
    assert session["origin_ref"] == f"automation:{aid}"
    assert "Swept the dependencies." in cli("sessions", "show", session_id, server=server).stdout
    table = cli("automations", "list", server=server)
    assert re.search(rf"{aid} .* succeeded .* \({session_id}\)", table.stdout), table.stdout

    paused = cli("automations", "pause", aid, server=server)
    assert paused.returncode == 0 and f"paused {aid}: paused (paused by " in paused.stdout
    assert "paused (paused by" in cli("automations", "list", server=server).stdout
    resumed = cli("automations", "resume", aid, server=server)
    assert resumed.returncode == 0 and resumed.stdout.strip() == f"resumed {aid}: enabled"

    edited = cli("automations", "edit", aid, "--cron", "30 6 * * 1-5", "--name", "Weekday sweep",
                 server=server)  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    assert f"edited {aid}: Weekday sweep" in edited.stdout
    weekdays = [datetime.fromisoformat(f) for f in FIRING.findall(edited.stdout)]
    assert len(weekdays) == 5 and all(f.weekday() < 5 and f.hour == 6 for f in weekdays)
    again = lines(cli("automations", "show", aid, "--json", server=server))[0]
    assert again["trigger"]["tz"] == "Europe/Berlin"  # the zone stays when only --cron changes
    assert again["instructions"] == task.read_text()

    too_often = cli("automations", "edit", aid, "--cron", "*/5 * * * *", server=server)
    assert too_often.returncode == 2
    assert "error [schedule_invalid]" in too_often.stderr and "15 minutes" in too_often.stderr
    assert "hint:" in too_often.stderr

    gone = cli("automations", "delete", aid, server=server)
    assert gone.returncode == 0 and gone.stdout.strip() == f"deleted {aid}"
    missing = cli("automations", "show", aid, server=server)
    assert missing.returncode == 2 and "error [automation_not_found]" in missing.stderr
    assert "openinspect automations list" in missing.stderr


@pytest.mark.e2e
def test_a_webhook_prints_its_url_and_secret_once_and_wrong_input_is_refused(
    server: ServerProcess, origin: Path
) -> None:
    base = ("automations", "create", "--name", "On alert", "--repo", str(origin),
            "--instructions", "Triage the alert.")  # fmt: skip
    made = cli(*base, "--webhook", "--hmac", "--condition", "$.level:equals:error",
               "--condition", "$.issue.id:exists", server=server)  # fmt: skip
    assert made.returncode == 0, made.stderr
    aid = re.search(r"^created (aut_\S+):", made.stdout, re.MULTILINE).group(1)  # type: ignore[union-attr]
    url = re.search(r"^URL: (\S+)$", made.stdout, re.MULTILINE)
    secret = re.search(r"^secret: (\S+)$", made.stdout, re.MULTILINE)
    assert url is not None and url.group(1) == f"{server.url}/webhooks/automations/{aid}"
    assert secret is not None and len(secret.group(1)) >= 32
    assert "it will not be shown again" in made.stdout

    shown = cli("automations", "show", aid, server=server)
    assert f"URL:          {url.group(1)}" in shown.stdout
    assert secret.group(1) not in shown.stdout
    assert "condition:    $.level equals 'error'" in shown.stdout
    as_json = lines(cli("automations", "show", aid, "--json", server=server))[0]
    assert secret.group(1) not in json.dumps(as_json)
    assert as_json["trigger"]["auth"] == "hmac" and as_json["concurrency"] == "queue"
    assert as_json["conditions"] == [
        {"path": "$.level", "op": "equals", "value": "error"},
        {"path": "$.issue.id", "op": "exists", "value": None},
    ]
    created_json = lines(cli(*base, "--webhook", "--json", server=server))[0]
    assert created_json["secret"] and created_json["webhook_url"].endswith(
        created_json["automation"]["id"]
    )
    cleared = cli("automations", "edit", aid, "--no-conditions", "--json", server=server)
    assert lines(cleared)[0]["conditions"] == []

    for args, code, said in [
        (("--webhook", "--preset", "daily"), "invalid_input", "exactly one trigger"),
        ((), "invalid_input", "exactly one trigger"),
        (("--cron", "0 3 * * *", "--tz", "Mars/Olympus"), "schedule_invalid", "Unknown time zone"),
        (("--cron", "0 3 * *"), "schedule_invalid", "five fields"),
        (("--preset", "yearly"), "invalid_input", "Unknown preset"),
        (("--sentry",), "invalid_input", "client secret"),
        (("--github-event", "push"), "invalid_input", "Unknown GitHub event"),
        (("--webhook", "--condition", "$.a == b"), "invalid_input", "Cannot read the condition"),
        (("--webhook", "--concurrency", "parallel"), "invalid_input", "Unknown concurrency"),
    ]:
        refused = cli(*base, *args, server=server)
        assert refused.returncode == 2, (args, refused.stdout)
        assert f"error [{code}]" in refused.stderr and said in refused.stderr, (
            args,
            refused.stderr,
        )
    github = cli(*base, "--github-event", "check_failed", "--github-event", "issue_comment",
                 "--branch", "main", "--json", server=server)  # fmt: skip
    assert github.returncode == 0, github.stderr
    trigger = lines(github)[0]["automation"]["trigger"]
    assert (trigger["events"], trigger["branches"]) == (["check_failed", "issue_comment"], ["main"])
    not_schedule = cli("automations", "edit", aid, "--cron", "0 3 * * *", server=server)
    assert not_schedule.returncode == 2 and "for schedules, not webhook" in not_schedule.stderr
