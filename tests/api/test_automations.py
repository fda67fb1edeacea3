"""``/api/automations`` through the real app: create (a webhook's URL and secret once), list,
get, edit, pause, resume, run now (real sessions), the run history, the schedule preview, and the
error codes; all in the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.testing.asgi import BASE_URL, Caller, InApp
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.automations.conftest import plane_settings, settled
from tests.sessions.bridged import bridged_plane

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(300)]
SCHEDULE = {"kind": "schedule", "cron": "0 3 * * *", "tz": "Europe/Berlin"}


@pytest.fixture
async def plane(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[ControlPlane]:
    async with bridged_plane(plane_settings(tmp_path / "home", llm), in_process=True) as opened:
        yield opened


async def create(caller: Caller, repo: str, **body: Any) -> dict[str, Any]:
    made = await caller.call(
        "POST",
        "/api/automations",
        json={"name": "nightly", "repo": repo, "instructions": "Say hi", "trigger": SCHEDULE}
        | body,
    )
    assert made.status_code == 201, made.text
    created: dict[str, Any] = made.json()
    return created


async def test_crud_pause_resume_and_run_now_through_the_app(
    api: InApp, plane: ControlPlane, calc: str
) -> None:
    admin = api.admin()
    created = await create(admin, calc)
    auto = created["automation"]
    assert created["secret"] is None and created["webhook_url"] is None
    assert auto["status"] == "enabled" and auto["concurrency"] == "skip"
    assert auto["trigger"] == {**SCHEDULE, "preset": None}
    assert auto["next_run_at"] is not None and auto["last_run"] is None
    aid = auto["id"]

    got = await admin.call("GET", f"/api/automations/{aid}")
    assert got.status_code == 200 and got.json()["name"] == "nightly"
    listed = await admin.call("GET", "/api/automations")
    assert [a["id"] for a in listed.json()["automations"]] == [aid]

    edited = await admin.call(
        "PATCH",
        f"/api/automations/{aid}",
        json={"name": "  renamed  ", "trigger": {"kind": "schedule", "cron": "0 4 * * *"}},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["name"] == "renamed" and edited.json()["trigger"]["tz"] == "UTC"
    assert (
        edited.json()["next_run_at"].endswith("04:00:00Z")
        or "T04:00:00" in edited.json()["next_run_at"]
    )

    paused = await admin.call("POST", f"/api/automations/{aid}/pause")
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused" and paused.json()["next_run_at"] is None
    assert paused.json()["paused_reason"] == f"paused by {admin.user.name}"

    ran = await admin.call("POST", f"/api/automations/{aid}/run")  # works while paused
    assert ran.status_code == 202, ran.text
    run = ran.json()
    assert run["trigger"] == "manual" and "context" not in run
    done = await settled(plane, run["id"])
    assert done.status == "succeeded", (done.error_code, done.reason)
    session = await admin.call("GET", f"/api/sessions/{done.session_id}")
    assert session.json()["session"]["title"] == "[Auto] renamed"
    assert session.json()["session"]["origin"] == "schedule"
    assert session.json()["session"]["origin_ref"] == f"automation:{aid}"

    resumed = await admin.call("POST", f"/api/automations/{aid}/resume")
    assert resumed.json()["status"] == "enabled" and resumed.json()["next_run_at"] is not None
    runs = await admin.call("GET", f"/api/automations/{aid}/runs")
    assert [r["id"] for r in runs.json()["runs"]] == [run["id"]]
    assert runs.json()["runs"][0]["status"] == "succeeded"
    shown = await admin.call("GET", f"/api/automations/{aid}")
    assert shown.json()["last_run"]["id"] == run["id"]

    deleted = await admin.call("DELETE", f"/api/automations/{aid}")
    assert deleted.status_code == 204
    gone = await admin.call("GET", f"/api/automations/{aid}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "automation_not_found"


async def test_a_webhook_automation_returns_its_url_and_secret_once(
    api: InApp, plane: ControlPlane, calc: str
) -> None:
    admin = api.admin()
    created = await create(admin, calc, trigger={"kind": "webhook", "auth": "hmac"})
    aid = created["automation"]["id"]
    assert created["webhook_url"] == f"{BASE_URL}/webhooks/automations/{aid}"
    assert created["automation"]["concurrency"] == "queue"
    secret = created["secret"]
    assert isinstance(secret, str) and len(secret) >= 40
    assert await plane.automations.store.automations.secret(aid) == secret
    for path in (f"/api/automations/{aid}", "/api/automations", f"/api/automations/{aid}/runs"):
        answer = await admin.call("GET", path)
        assert secret not in answer.text
    sentry = await create(admin, calc, trigger={"kind": "sentry"}, secret="x" * 32)
    assert sentry["secret"] is None
    assert sentry["webhook_url"].endswith(f"/webhooks/sentry/{sentry['automation']['id']}")


async def test_run_now_is_busy_while_a_skip_run_is_active(
    api: InApp, plane: ControlPlane, llm: ScriptedLLMServer, calc: str
) -> None:
    llm.reset({"turns": [{"text": "slow", "delay_ms": 4000}]})
    admin = api.admin()
    aid = (await create(admin, calc))["automation"]["id"]
    first = await admin.call("POST", f"/api/automations/{aid}/run")
    assert first.status_code == 202
    busy = await admin.call("POST", f"/api/automations/{aid}/run")
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "automation_busy"
    assert busy.json()["error"]["hint"]
    await settled(plane, first.json()["id"])


async def test_the_preview_gives_five_firings_in_the_zone(api: InApp, plane: ControlPlane) -> None:
    preview = await api.admin().call(
        "GET", "/api/automations/preview", params={"cron": "30 2 * * *", "tz": "Europe/Berlin"}
    )
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["tz"] == "Europe/Berlin" and len(body["next"]) == 5
    assert all(
        "T02:30:00+01:00" in t or "T03:00:00+02:00" in t or "T02:30:00+02:00" in t
        for t in body["next"]
    )
    refused = await api.admin().call(
        "GET", "/api/automations/preview", params={"cron": "*/5 * * * *"}
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "schedule_invalid"
    assert "5 minutes apart" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"trigger": {"kind": "schedule", "cron": "* * * * *"}}, "schedule_invalid"),
        (
            {"trigger": {"kind": "schedule", "cron": "0 3 * * *", "tz": "Nowhere/City"}},
            "schedule_invalid",
        ),
        ({"trigger": {"kind": "sentry"}}, "invalid_input"),  # no client secret
        ({"trigger": {"kind": "github", "events": []}}, "invalid_input"),
        ({"trigger": {"kind": "telepathy"}}, "invalid_input"),
        ({"instructions": "x" * 10_001}, "invalid_input"),
        ({"name": "n" * 201}, "invalid_input"),
        ({"name": "   "}, "invalid_input"),
        ({"conditions": [{"path": "$.a", "op": "exists", "value": 1}]}, "invalid_input"),
        # Checked as RFC 9535 queries with bounded patterns before anything is stored.
        ({"conditions": [{"path": "$[?@.a ==", "op": "exists"}]}, "invalid_input"),
        ({"conditions": [{"path": "a.b", "op": "exists"}]}, "invalid_input"),
        (
            {"conditions": [{"path": "$.a", "op": "matches", "value": "((a{100}){100}){100}"}]},
            "invalid_input",
        ),
        (
            {"trigger": {"kind": "webhook", "idempotency_path": "$..["}},
            "invalid_input",
        ),
        ({"run_as": "usr_nobody"}, "invalid_input"),
        ({"secret": "short"}, "invalid_input"),
        ({"unknown": 1}, "invalid_input"),
    ],
)
async def test_bad_input_has_a_stable_code(
    api: InApp, calc: str, body: dict[str, Any], code: str
) -> None:
    answer = await api.admin().call(
        "POST",
        "/api/automations",
        json={"name": "n", "repo": calc, "instructions": "i", "trigger": SCHEDULE} | body,
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == code


async def test_an_edit_keeps_the_trigger_kind_and_refuses_nulls(api: InApp, calc: str) -> None:
    admin = api.admin()
    aid = (await create(admin, calc))["automation"]["id"]
    other = await admin.call(
        "PATCH", f"/api/automations/{aid}", json={"trigger": {"kind": "webhook"}}
    )
    assert other.status_code == 422 and "stays a schedule" in other.json()["error"]["message"]
    nulled = await admin.call("PATCH", f"/api/automations/{aid}", json={"name": None})
    assert nulled.status_code == 422
    reset = await admin.call("PATCH", f"/api/automations/{aid}", json={"model": None})
    assert reset.status_code == 200 and reset.json()["model"] is None


async def test_the_routes_are_in_the_openapi_document(api: InApp) -> None:
    doc = (await api.admin().call("GET", "/api/openapi.json")).json()
    paths = doc["paths"]
    assert {"post", "get"} <= set(paths["/api/automations"])
    assert {"get", "patch", "delete"} <= set(paths["/api/automations/{automation_id}"])
    for action in ("pause", "resume", "run"):
        assert "post" in paths[f"/api/automations/{{automation_id}}/{action}"]
    assert "get" in paths["/api/automations/{automation_id}/runs"]
    assert "get" in paths["/api/automations/preview"]
    assert "409" in paths["/api/automations/{automation_id}/run"]["post"]["responses"]
