"""The fork door (``POST /api/sessions/{id}/fork``): authorised like every session door (a
member who cannot see the source gets the same 404 as for a session that does not exist, and
no session is made), its event number bounded (below 1, past the session's last, or too large
for any: 422 with a stable code, never echoed), a deleted session not forkable, and the fork
always the caller's. In process: the claims are the route's, the handler's and the store's."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from openinspect.domain.events import utcnow
from openinspect.testing.asgi import InApp


async def _count(api: InApp) -> int:
    return len(await api.plane.store.sessions.list(limit=1000))


async def test_a_stranger_cannot_fork_a_session_it_cannot_see(api: InApp, calc: str) -> None:
    ada, eve = await api.member("ada"), await api.member("eve")
    sid = (await ada.session(repo=calc, title="Ada's work"))["id"]
    before = await _count(api)
    for target in (sid, "ses_0000000000000000"):
        answer = await eve.call("POST", f"/api/sessions/{target}/fork", json={"at_seq": 1})
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "session_not_found"
    assert await _count(api) == before


async def test_the_fork_point_is_bounded_with_stable_codes(api: InApp, calc: str) -> None:
    ada = await api.member("ada")
    sid = (await ada.session(repo=calc))["id"]
    before = await _count(api)
    cases = [
        (0, "invalid_input"),
        (-5, "invalid_input"),
        (2**70, "invalid_input"),
        ("1; drop table", "invalid_input"),
        (2, "fork_point_invalid"),  # the session has one event
        (2**62, "fork_point_invalid"),
    ]
    for at_seq, code in cases:
        answer = await ada.call("POST", f"/api/sessions/{sid}/fork", json={"at_seq": at_seq})
        assert answer.status_code == 422, (at_seq, answer.text)
        assert answer.json()["error"]["code"] == code, (at_seq, answer.text)
    long_title = await ada.call(
        "POST", f"/api/sessions/{sid}/fork", json={"at_seq": 1, "title": "t" * 50_000}
    )
    assert long_title.status_code == 422 and "t" * 300 not in long_title.text
    missing = await ada.call("POST", f"/api/sessions/{sid}/fork", json={})
    assert missing.status_code == 422
    assert await _count(api) == before


async def test_a_fork_is_the_callers_and_says_where_it_came_from(api: InApp, calc: str) -> None:
    ada = await api.member("ada")
    admin = api.admin()
    sid = (await ada.session(repo=calc, title="Ada's work"))["id"]
    made = await ada.call("POST", f"/api/sessions/{sid}/fork", json={"at_seq": 1})
    assert made.status_code == 201, made.text
    fork = made.json()["session"]
    assert fork["id"] != sid and fork["title"] == "Fork of Ada's work"
    assert (fork["forked_from_id"], fork["forked_from_seq"]) == (sid, 1)
    shown = await ada.call("GET", f"/api/sessions/{fork['id']}")
    assert shown.json()["session"]["forked_from_id"] == sid
    created = (await api.plane.store.events.after(fork["id"], 0, 10))[0]
    assert created.type == "session-created" and created.forked_from is not None
    assert created.forked_from.session_id == sid
    # An admin may fork anyone's session; the fork is the admin's, not the source's creator's.
    theirs = await admin.call(
        "POST", f"/api/sessions/{sid}/fork", json={"at_seq": 1, "title": "mine"}
    )
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["session"]["creator_id"] == admin.user.id
    assert theirs.json()["session"]["title"] == "mine"
    # ...and ada, who cannot see the admin's fork, cannot fork it either.
    answer = await ada.call(
        "POST", f"/api/sessions/{theirs.json()['session']['id']}/fork", json={"at_seq": 1}
    )
    assert answer.status_code == 404


async def test_a_deleted_session_cannot_be_forked(api: InApp, calc: str) -> None:
    ada = await api.member("ada")
    sid = (await ada.session(repo=calc))["id"]
    deleted = await api.plane.store.sessions.delete_abandoned_drafts(
        utcnow() + timedelta(seconds=1), 10
    )
    assert sid in deleted
    answer = await ada.call("POST", f"/api/sessions/{sid}/fork", json={"at_seq": 1})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "session_not_found"


async def test_a_participant_who_may_not_start_sessions_on_the_repo_cannot_fork(
    api: InApp, origin: Path
) -> None:
    """Seeing a session is not enough: the fork is a new session on its repo, and members may
    not start sessions on a local path (only an admin's session can be on one)."""
    eve = await api.member("eve")
    sid = (await api.admin().session(repo=str(origin)))["id"]
    await api.plane.store.sessions.add_participant(sid, eve.user.id)
    assert (await eve.call("GET", f"/api/sessions/{sid}")).status_code == 200
    before = await _count(api)
    answer = await eve.call("POST", f"/api/sessions/{sid}/fork", json={"at_seq": 1})
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["code"] == "forbidden"
    assert str(origin) not in answer.text  # no server path in the refusal
    assert await _count(api) == before
