"""A repo's egress allow-list and a session's egress log over the REST API: everyone signed in
reads a repo's list, only admins change it, bad entries are refused with a code; a session's
log is read like the session (a member reaches only their own)."""

from __future__ import annotations

import hashlib

from openinspect.controlplane import ControlPlane
from openinspect.domain.ids import new_id
from openinspect.testing.asgi import InApp
from openinspect.testing.records import session_record


async def test_admins_set_a_repos_egress_list_and_members_read_it(api: InApp, calc: str) -> None:
    admin = api.admin()
    shown = await admin.call("GET", f"/api/repos/{calc}/egress")
    assert shown.status_code == 200, shown.text
    assert shown.json()["allow"] == [] and "pypi.org" in shown.json()["server"]
    assert shown.json()["enabled"] is True

    put = await admin.call(
        "PUT",
        f"/api/repos/{calc}/egress",
        json={"allow": ["GitHub.com", "*.internal.example", "10.0.0.5:3141", "github.com"]},
    )
    assert put.status_code == 200, put.text
    assert sorted(put.json()["allow"]) == ["*.internal.example", "10.0.0.5:3141", "github.com"]

    member = await api.member("bob")
    seen = await member.call("GET", f"/api/repos/{calc}/egress")
    assert sorted(seen.json()["allow"]) == sorted(put.json()["allow"])
    refused = await member.call("PUT", f"/api/repos/{calc}/egress", json={"allow": []})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")


async def test_bad_egress_entries_are_refused(api: InApp, calc: str) -> None:
    admin = api.admin()
    for body in (
        {"allow": ["*"]},
        {"allow": ["*.com"]},
        {"allow": ["http://pypi.org"]},
        {"allow": ["pypi.org:0"]},
        {"allow": ["::1"]},
        {"allow": ["x" * 300]},
        {"allow": ["a.example"] * 201},
        {"allow": "pypi.org"},
        {"hosts": []},
    ):
        bad = await admin.call("PUT", f"/api/repos/{calc}/egress", json=body)
        assert bad.status_code == 422, (body, bad.text)
        assert bad.json()["error"]["code"] in ("invalid_input", "validation_error"), bad.text
    missing = await admin.call("GET", "/api/repos/nope/egress")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "repo_not_found")


async def _record(plane: ControlPlane, session_id: str, host: str, allowed: bool) -> None:
    sandbox_id = new_id("sbx")
    await plane.store.sandboxes.create(
        sandbox_id=sandbox_id,
        session_id=session_id,
        provider="test",
        token_hash=hashlib.sha256(b"t").hexdigest(),
    )
    await plane.store.egress.record(
        session_id=session_id,
        sandbox_id=sandbox_id,
        method="CONNECT",
        host=host,
        port=443,
        allowed=allowed,
        code="allowed" if allowed else "host_not_allowed",
        status=200 if allowed else 403,
    )


async def test_a_sessions_egress_log_is_read_like_the_session(
    api: InApp, plane: ControlPlane
) -> None:
    admin_user = plane.bootstrap.user
    assert admin_user is not None
    session = session_record(new_id("ses"), admin_user.id)
    await plane.store.sessions.create(session)
    for n in range(3):
        await _record(plane, session.id, f"h{n}.example", allowed=n != 1)

    page = await api.admin().call("GET", f"/api/sessions/{session.id}/egress?limit=2")
    assert page.status_code == 200, page.text
    body = page.json()
    assert [r["host"] for r in body["requests"]] == ["h2.example", "h1.example"]
    assert body["requests"][1]["allowed"] is False and body["requests"][1]["status"] == 403
    older = await api.admin().call(
        "GET", f"/api/sessions/{session.id}/egress?limit=2&before={body['next_before']}"
    )
    assert [r["host"] for r in older.json()["requests"]] == ["h0.example"]
    assert older.json()["next_before"] is None

    member = await api.member("eve")
    hidden = await member.call("GET", f"/api/sessions/{session.id}/egress")
    assert hidden.status_code == 404, hidden.text
