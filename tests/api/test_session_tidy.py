"""``PATCH /api/sessions/{id}``: rename, archive, unarchive; each change is a durable
``session-updated`` event committed with it, and the list hides archived sessions unless asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openinspect.api.app import create_app
from openinspect.controlplane import ControlPlane

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def client(plane: ControlPlane) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(plane.settings, plane)
    headers = {"Authorization": f"Bearer {plane.bootstrap.token}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    ) as c:
        yield c


async def _session(client: httpx.AsyncClient, origin: Path, **body: Any) -> dict[str, Any]:
    made = await client.post("/api/sessions", json={"repo": str(origin), **body})
    assert made.status_code == 201, made.text
    session: dict[str, Any] = made.json()["session"]
    return session


async def _updates(plane: ControlPlane, session_id: str) -> list[dict[str, Any]]:
    events = await plane.store.events.after(session_id, 0, 1000)
    return [
        e.model_dump(include={"title", "status"}) for e in events if e.type == "session-updated"
    ]


async def _listed(client: httpx.AsyncClient, query: str = "") -> list[str]:
    answer = await client.get(f"/api/sessions{query}")
    assert answer.status_code == 200, answer.text
    return [s["id"] for s in answer.json()["sessions"]]


async def test_rename_archive_unarchive_are_events_and_the_list_filters(
    client: httpx.AsyncClient, plane: ControlPlane, origin: Path
) -> None:
    kept = await _session(client, origin, title="Kept")
    sid = (await _session(client, origin))["id"]

    renamed = await client.patch(f"/api/sessions/{sid}", json={"title": "  Fix the adder  "})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["session"]["title"] == "Fix the adder"
    archived = await client.patch(f"/api/sessions/{sid}", json={"archived": True})
    assert archived.json()["session"]["status"] == "archived"

    assert await _listed(client) == [kept["id"]]
    assert await _listed(client, "?archived=true") == [sid]
    session = await plane.store.sessions.get(sid)
    assert session is not None and (session.title, session.status) == ("Fix the adder", "archived")
    # The event and the row changed together: the row's last_seq is the event's seq.
    events = await plane.store.events.after(sid, 0, 1000)
    assert session.last_seq == events[-1].seq and events[-1].type == "session-updated"

    prompt = await client.post(f"/api/sessions/{sid}/prompts", json={"content": "go"})
    assert prompt.status_code == 409
    assert prompt.json()["error"]["code"] == "session_not_promptable"
    assert "Unarchive" in prompt.json()["error"]["hint"]

    back = await client.patch(f"/api/sessions/{sid}", json={"archived": False})
    assert back.json()["session"]["status"] == "idle"
    assert sorted(await _listed(client)) == sorted([kept["id"], sid])
    assert await _listed(client, "?archived=true") == []
    assert await _updates(plane, sid) == [
        {"title": "Fix the adder", "status": None},
        {"title": None, "status": "archived"},
        {"title": None, "status": "idle"},
    ]
    # Archiving twice, or unarchiving a session that is not archived, changes nothing.
    assert (await client.patch(f"/api/sessions/{sid}", json={"archived": False})).status_code == 200
    assert len(await _updates(plane, sid)) == 3


async def test_a_renamed_draft_keeps_its_title_after_the_first_prompt(
    client: httpx.AsyncClient, plane: ControlPlane, origin: Path
) -> None:
    sid = (await _session(client, origin))["id"]
    await client.patch(f"/api/sessions/{sid}", json={"title": "My name"})
    actor = await plane.manager.actor(sid)
    user = plane.bootstrap.user
    assert user is not None
    await actor.submit(user, "Make it faster\nplease")
    assert actor.session.title == "My name"


@pytest.mark.parametrize(
    ("title", "why"),
    [
        ("", "1 to 200"),
        ("   ", "1 to 200"),
        ("x" * 201, "200"),
        ("two\nlines", "printable"),
        ("tab\there", "printable"),
        ("evil\u202eredro", "printable"),  # a right-to-left override hides what it says
        ("zero\u200bwidth", "printable"),
    ],
)
async def test_bad_titles_are_refused_and_change_nothing(
    client: httpx.AsyncClient, plane: ControlPlane, origin: Path, title: str, why: str
) -> None:
    sid = (await _session(client, origin, title="Before"))["id"]
    answer = await client.patch(f"/api/sessions/{sid}", json={"title": title, "archived": True})
    assert answer.status_code == 422, answer.text
    assert why in answer.text
    session = await plane.store.sessions.get(sid)
    assert session is not None and (session.title, session.status) == ("Before", "created")
    assert await _updates(plane, sid) == []


async def test_archiving_a_session_with_an_unfinished_prompt_is_refused(
    client: httpx.AsyncClient, plane: ControlPlane, origin: Path
) -> None:
    sid = (await _session(client, origin))["id"]
    actor = await plane.manager.actor(sid)
    user = plane.bootstrap.user
    assert user is not None
    actor.start = lambda: None  # type: ignore[method-assign]  # keep the prompt queued
    await actor.submit(user, "do it")

    answer = await client.patch(f"/api/sessions/{sid}", json={"archived": True})
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "session_busy"
    assert "cancel" in answer.json()["error"]["hint"]
    session = await plane.store.sessions.get(sid)
    assert session is not None and session.status == "active"


async def test_patching_an_unknown_session_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.patch("/api/sessions/ses_nope", json={"title": "x"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "session_not_found"
