"""A registered repo's review-bot settings over the REST API: everyone signed in reads them with
what the bot will do (its own values over the server's defaults); only admins change them; bad
input is refused with a code, an unknown repo is 404."""

from __future__ import annotations

from openinspect.testing.asgi import InApp


async def test_admins_set_a_repos_review_settings_and_members_read_them(
    api: InApp, calc: str
) -> None:
    admin = api.admin()
    shown = await admin.call("GET", f"/api/repos/{calc}/review-settings")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert (body["auto_review"], body["instructions"], body["updated_at"]) == (None, None, None)
    assert body["effective"]["auto_review"] is True  # the server's default

    put = await admin.call(
        "PUT",
        f"/api/repos/{calc}/review-settings",
        json={"auto_review": False, "instructions": "  Focus on tests.  "},
    )
    assert put.status_code == 200, put.text
    assert put.json()["instructions"] == "Focus on tests."
    assert put.json()["effective"] == {
        "auto_review": False,
        "instructions": "Focus on tests.",
        "model": None,
    }

    member = await api.member("bob")
    seen = await member.call("GET", f"/api/repos/{calc}/review-settings")
    assert seen.json()["effective"]["auto_review"] is False
    refused = await member.call(
        "PUT", f"/api/repos/{calc}/review-settings", json={"auto_review": True}
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")


async def test_bad_review_settings_are_refused(api: InApp, calc: str) -> None:
    admin = api.admin()
    for body in (
        {"auto_review": "sometimes"},
        {"instructions": "x" * 8_001},
        {"colour": "blue"},
    ):
        bad = await admin.call("PUT", f"/api/repos/{calc}/review-settings", json=body)
        assert bad.status_code == 422, body
    unknown_model = await admin.call(
        "PUT", f"/api/repos/{calc}/review-settings", json={"model": "nope:nothing"}
    )
    assert unknown_model.status_code in (400, 422), unknown_model.text
    assert "error" in unknown_model.json()
    missing = await admin.call("GET", "/api/repos/nope/review-settings")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "repo_not_found")
