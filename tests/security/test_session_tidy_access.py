"""Renaming and archiving are authorised like every other access: a member who does not take
part in a session gets the same 404 as for a session that does not exist, and changes nothing;
the archived filter lists only sessions the member may see. In process: the claims are the
routes' and the store's."""

from __future__ import annotations

from openinspect.testing.asgi import InApp


async def test_a_stranger_can_neither_rename_nor_archive_nor_list_an_archived_session(
    api: InApp, calc: str
) -> None:
    ada, eve = await api.member("ada"), await api.member("eve")
    sid = (await ada.session(repo=calc, title="Ada's work"))["id"]

    for body in ({"title": "pwned"}, {"archived": True}, {"archived": False}):
        answer = await eve.call("PATCH", f"/api/sessions/{sid}", json=body)
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "session_not_found"
    stored = await api.plane.store.sessions.get(sid)
    assert stored is not None and (stored.title, stored.status) == ("Ada's work", "created")
    assert [e.type for e in await api.plane.store.events.after(sid, 0, 100)] == ["session-created"]

    archived = await ada.call("PATCH", f"/api/sessions/{sid}", json={"archived": True})
    assert archived.status_code == 200, archived.text
    listed = await eve.call("GET", "/api/sessions?archived=true")
    assert listed.json()["sessions"] == []
    mine = await ada.call("GET", "/api/sessions?archived=true")
    assert [s["id"] for s in mine.json()["sessions"]] == [sid]


async def test_an_oversized_patch_is_refused_before_it_reaches_the_session(
    api: InApp, calc: str
) -> None:
    ada = await api.member("ada")
    sid = (await ada.session(repo=calc))["id"]
    answer = await ada.call(
        "PATCH", f"/api/sessions/{sid}", json={"title": "x" * 100_000, "archived": "yes"}
    )
    assert answer.status_code == 422
    assert "x" * 300 not in answer.text  # the input is not echoed back
