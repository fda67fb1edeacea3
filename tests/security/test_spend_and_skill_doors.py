"""Spend limits and managed skills over the REST API: only admins read or change limits and
write skills (members list skill names and descriptions, never bodies); bad limits, targets and
skills are refused with a code and without echoing what was sent; waking paused sessions
is tested with them (``tests/sessions/test_spend_limits.py``)."""

from __future__ import annotations

import pytest

from openinspect.testing.asgi import InApp

BODY_MARK = "zz-secret-body-okapi"


async def test_members_cannot_read_or_set_limits(api: InApp, calc: str) -> None:
    member = await api.member("bob")
    for method, body in (("GET", None), ("PUT", {"scope": "global", "usd": 100})):
        refused = await member.call(method, "/api/limits", json=body)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    shown = await api.admin().call("GET", "/api/limits")
    assert shown.status_code == 200 and shown.json() == {"limits": []}


async def test_admins_set_limits_per_scope(api: InApp, calc: str) -> None:
    admin = api.admin()
    for body in (
        {"scope": "global", "usd": 5},
        {"scope": "repo", "target": calc, "usd": 2.5},
        {"scope": "user-daily", "usd": 20},
    ):
        done = await admin.call("PUT", "/api/limits", json=body)
        assert done.status_code == 200, done.text
    listed = {(x["scope"], x["target"], x["usd"]) for x in done.json()["limits"]}
    assert listed == {("global", None, 5.0), ("repo", "calc", 2.5), ("user-daily", None, 20.0)}
    removed = await admin.call("PUT", "/api/limits", json={"scope": "global", "usd": None})
    assert {x["scope"] for x in removed.json()["limits"]} == {"repo", "user-daily"}


@pytest.mark.parametrize(
    "body",
    [
        {"scope": "global", "usd": -1},
        {"scope": "global", "usd": 1e9},
        {"scope": "global", "usd": "NaN"},
        {"scope": "global", "usd": "Infinity"},
        {"scope": "global", "usd": "five"},
        {"scope": "global", "target": "calc", "usd": 1},
        {"scope": "repo", "usd": 1},
        {"scope": "everyone", "usd": 1},
        {"scope": "global", "usd": 1, "extra": True},
        {"scope": "repo", "target": "x" * 500, "usd": 1},
        {"scope": "global"},
    ],
)
async def test_bad_limits_are_refused(api: InApp, calc: str, body: dict[str, object]) -> None:
    bad = await api.admin().call("PUT", "/api/limits", json=body)
    assert bad.status_code == 422, (body, bad.text)
    assert bad.json()["error"]["code"] in ("invalid_input", "validation_error")
    assert (await api.admin().call("GET", "/api/limits")).json() == {"limits": []}


async def test_unknown_targets_are_not_found(api: InApp) -> None:
    admin = api.admin()
    repo = await admin.call(
        "PUT", "/api/limits", json={"scope": "repo", "target": "nope", "usd": 1}
    )
    assert (repo.status_code, repo.json()["error"]["code"]) == (404, "repo_not_found")
    auto = await admin.call(
        "PUT", "/api/limits", json={"scope": "automation", "target": "aut_nope", "usd": 1}
    )
    assert (auto.status_code, auto.json()["error"]["code"]) == (404, "automation_not_found")


async def test_members_list_skills_but_only_admins_read_bodies_and_write(
    api: InApp, calc: str
) -> None:
    admin, member = api.admin(), await api.member("bob")
    body = {"description": "How we release", "body": f"Steps {BODY_MARK}"}
    made = await admin.call("PUT", "/api/skills/release", json=body)
    assert made.status_code == 200, made.text
    own = await admin.call(
        "PUT", "/api/skills/release", params={"repo": calc}, json={**body, "body": "Calc steps"}
    )
    assert own.json()["scope"] == "repo" and own.json()["repo"] == "calc"
    listed = await member.call("GET", "/api/skills", params={"repo": calc})
    assert listed.status_code == 200
    assert [(s["name"], s["scope"]) for s in listed.json()["skills"]] == [("release", "repo")]
    assert BODY_MARK not in listed.text
    for method, json_body in (("GET", None), ("PUT", body), ("DELETE", None)):
        refused = await member.call(method, "/api/skills/release", json=json_body)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
        assert BODY_MARK not in refused.text
    read = await admin.call("GET", "/api/skills/release")
    assert read.json()["body"] == f"Steps {BODY_MARK}"
    gone = await admin.call("DELETE", "/api/skills/release", params={"repo": calc})
    assert gone.status_code == 204
    again = await admin.call("DELETE", "/api/skills/release", params={"repo": calc})
    assert (again.status_code, again.json()["error"]["code"]) == (404, "skill_not_found")


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("Bad%20Name", {"description": "d", "body": "b"}),
        ("..", {"description": "d", "body": "b"}),
        ("ok", {"description": "", "body": "b"}),
        ("ok", {"description": "d" * 501, "body": "b"}),
        ("ok", {"description": "d", "body": "b" * (64 * 1024 + 1)}),
        ("ok", {"description": "d", "body": "   "}),
        ("ok", {"description": "d"}),
        ("ok", {"description": "d", "body": "b", "scope": "global"}),
        ("x" * 65, {"description": "d", "body": "b"}),
    ],
)
async def test_bad_skills_are_refused_without_echo(
    api: InApp, name: str, body: dict[str, object]
) -> None:
    bad = await api.admin().call("PUT", f"/api/skills/{name}", json=body)
    assert bad.status_code in (404, 422), (name, bad.text)
    if bad.status_code == 422:
        assert bad.json()["error"]["code"] in ("invalid_input", "validation_error")
    assert "b" * 100 not in bad.text
    assert (await api.admin().call("GET", "/api/skills")).json() == {"skills": []}
    missing = await api.admin().call("GET", "/api/skills", params={"repo": "nope"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "repo_not_found")
