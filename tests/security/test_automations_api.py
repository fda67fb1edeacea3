"""Who may see and touch an automation: a member only the ones they created or that run as
them (someone else's answers the same 404 as one that does not exist, and changes nothing); a
member cannot make one run as someone else; the secret never comes back; bodies and fields are
bounded; errors name no server path."""

from __future__ import annotations

from typing import Any

from openinspect.testing.asgi import Caller, InApp

SCHEDULE = {"kind": "schedule", "cron": "0 3 * * *", "tz": "UTC"}


async def create(caller: Caller, repo: str, **body: Any) -> dict[str, Any]:
    made = await caller.call(
        "POST",
        "/api/automations",
        json={"name": "mine", "repo": repo, "instructions": "i", "trigger": SCHEDULE} | body,
    )
    assert made.status_code == 201, made.text
    created: dict[str, Any] = made.json()
    return created


async def test_a_member_can_neither_see_nor_touch_anothers_automation(
    api: InApp, calc: str
) -> None:
    ada, eve = await api.member("ada"), await api.member("eve")
    aid = (await create(ada, calc))["automation"]["id"]
    before = await api.plane.store.automations.get(aid)
    attempts = [
        ("GET", f"/api/automations/{aid}", None),
        ("PATCH", f"/api/automations/{aid}", {"name": "pwned"}),
        ("PATCH", f"/api/automations/{aid}", {"run_as": eve.user.id}),
        ("POST", f"/api/automations/{aid}/pause", None),
        ("POST", f"/api/automations/{aid}/resume", None),
        ("POST", f"/api/automations/{aid}/run", None),
        ("GET", f"/api/automations/{aid}/runs", None),
        ("DELETE", f"/api/automations/{aid}", None),
    ]
    for method, path, body in attempts:
        answer = await eve.call(method, path, json=body) if body else await eve.call(method, path)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "automation_not_found"
        missing = await eve.call(method, path.replace(aid, "aut_0000000000000000"), json=body)
        assert missing.json() == {
            "error": {**answer.json()["error"], "message": missing.json()["error"]["message"]}
        }
    assert await api.plane.store.automations.get(aid) == before
    assert await api.plane.store.automations.runs(aid) == []
    listed = await eve.call("GET", "/api/automations")
    assert listed.json()["automations"] == []
    assert [a["id"] for a in (await ada.call("GET", "/api/automations")).json()["automations"]] == [
        aid
    ]
    everyone = await api.admin().call("GET", "/api/automations")
    assert [a["id"] for a in everyone.json()["automations"]] == [aid]  # admins see all


async def test_a_member_runs_automations_as_themselves_only(api: InApp, calc: str) -> None:
    ada, eve = await api.member("ada"), await api.member("eve")
    refused = await eve.call(
        "POST",
        "/api/automations",
        json={
            "name": "as ada",
            "repo": calc,
            "instructions": "i",
            "trigger": SCHEDULE,
            "run_as": ada.user.id,
        },
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert await api.plane.store.automations.list() == []
    aid = (await create(eve, calc))["automation"]["id"]
    switched = await eve.call("PATCH", f"/api/automations/{aid}", json={"run_as": ada.user.id})
    assert switched.status_code == 403
    stored = await api.plane.store.automations.get(aid)
    assert stored is not None and stored.run_as == eve.user.id
    # an admin may make one run as a member, who then sees and manages it
    made = await create(api.admin(), calc, run_as=ada.user.id)
    seen = await ada.call("GET", f"/api/automations/{made['automation']['id']}")
    assert seen.status_code == 200 and seen.json()["run_as"] == ada.user.id


async def test_without_a_token_nothing_is_answered(api: InApp) -> None:
    for method, path in (
        ("GET", "/api/automations"),
        ("POST", "/api/automations"),
        ("GET", "/api/automations/preview?cron=0+3+*+*+*"),
        ("GET", "/api/automations/aut_x"),
    ):
        answer = await api.http.request(method, path)
        assert answer.status_code == 401, (method, path)


async def test_the_secret_is_shown_once_and_never_again(api: InApp, calc: str) -> None:
    ada = await api.member("ada")
    created = await create(ada, calc, trigger={"kind": "webhook"})
    secret, aid = created["secret"], created["automation"]["id"]
    assert secret
    for path in (f"/api/automations/{aid}", "/api/automations", f"/api/automations/{aid}/runs"):
        assert secret not in (await ada.call("GET", path)).text
    patched = await ada.call("PATCH", f"/api/automations/{aid}", json={"name": "other"})
    assert secret not in patched.text
    given = "my-own-webhook-secret-123"
    own = await create(ada, calc, trigger={"kind": "webhook"}, secret=given)
    assert own["secret"] == given  # the secret to configure the sender with, this once


async def test_bodies_and_fields_are_bounded(api: InApp, calc: str) -> None:
    admin = api.admin()
    huge = await admin.call(
        "POST",
        "/api/automations",
        content=b'{"name": "' + b"x" * (300 * 1024) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    long_id = await admin.call("GET", "/api/automations/" + "a" * 65)
    assert long_id.status_code == 422
    for body in (
        {"instructions": "x" * 10_001},
        {"name": "x" * 201},
        {"repo": "x" * 2049},
        {"instructions": "nul \x00 byte"},
        {"conditions": [{"path": "$.a", "op": "equals", "value": "v" * 1001}]},
        {"conditions": [{"path": "$.a", "op": "exists"}] * 21},
        {"trigger": {"kind": "github", "events": ["issue_comment"], "labels": ["l"] * 21}},
        {"trigger": {"kind": "webhook", "signature_header": "X-Sig\r\nInjected: 1"}},
        {"trigger": {"kind": "schedule", "cron": "0 3 * * *", "tz": "T" * 65}},
    ):
        answer = await admin.call(
            "POST",
            "/api/automations",
            json={"name": "n", "repo": calc, "instructions": "i", "trigger": SCHEDULE} | body,
        )
        assert answer.status_code == 422, (body, answer.text)
    assert await api.plane.store.automations.list() == []


async def test_errors_name_no_server_path(api: InApp) -> None:
    home = str(api.plane.settings.home_dir)
    for tz in ("Europe", "../../../../etc/passwd", "/etc/localtime"):
        answer = await api.admin().call(
            "GET", "/api/automations/preview", params={"cron": "0 3 * * *", "tz": tz}
        )
        assert answer.status_code == 422, answer.text
        assert "zoneinfo" not in answer.text and home not in answer.text
        assert "site-packages" not in answer.text
