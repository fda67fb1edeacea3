"""Renaming and archiving are authorised like every other access: a member who does not take
part in a session gets the same 404 as for a session that does not exist, and changes nothing;
the archived filter lists only sessions the member may see."""

from __future__ import annotations

from tests.security.conftest import Live


async def test_a_stranger_can_neither_rename_nor_archive_nor_list_an_archived_session(
    live: Live,
) -> None:
    _, ada = await live.member("ada")
    _, eve = await live.member("eve")
    session = await live.session(ada, title="Ada's work")
    sid = session["id"]

    for body in ({"title": "pwned"}, {"archived": True}, {"archived": False}):
        answer = await live.call(eve, "PATCH", f"/api/sessions/{sid}", json=body)
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "session_not_found"
    stored = await live.plane.store.sessions.get(sid)
    assert stored is not None and (stored.title, stored.status) == ("Ada's work", "created")
    assert [e.type for e in await live.plane.store.events.after(sid, 0, 100)] == ["session-created"]

    archived = await live.call(ada, "PATCH", f"/api/sessions/{sid}", json={"archived": True})
    assert archived.status_code == 200, archived.text
    listed = await live.call(eve, "GET", "/api/sessions?archived=true")
    assert listed.json()["sessions"] == []
    mine = await live.call(ada, "GET", "/api/sessions?archived=true")
    assert [s["id"] for s in mine.json()["sessions"]] == [sid]


async def test_an_oversized_patch_is_refused_before_it_reaches_the_session(live: Live) -> None:
    _, ada = await live.member("ada")
    sid = (await live.session(ada))["id"]
    answer = await live.call(
        ada, "PATCH", f"/api/sessions/{sid}", json={"title": "x" * 100_000, "archived": "yes"}
    )
    assert answer.status_code == 422
    assert "x" * 300 not in answer.text  # the input is not echoed back
