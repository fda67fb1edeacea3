"""The second net: every event of a session is redacted with its repo's and the global secrets
before the event log stores or publishes it, whether or not a box ever ran, and so are the
session title and a prompt's error the change writes; a secret set here reaches the next
event at once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from openinspect.controlplane import ControlPlane
from openinspect.domain.events import AgentText, ToolOutputDelta
from openinspect.secrets.rules import GLOBAL, SecretScope

TOKEN = "sk-SECRET-net-0123456789"
LATER = "sk-SECRET-later-987654"


async def test_every_event_is_redacted_before_it_is_stored_or_published(
    plane: ControlPlane, origin: Path
) -> None:
    admin = plane.bootstrap.user
    assert admin is not None
    repo = await plane.store.repos.create(
        name="calc", url=str(origin), default_branch="main", created_by=admin.id
    )
    await plane.store.secrets.put(SecretScope(repo.id), {"API_TOKEN": TOKEN}, by=None)
    session = await plane.manager.create(admin, repo="calc")
    actor = await plane.manager.actor(session.id)
    published: list[dict[str, object]] = []

    async def listen() -> None:
        async with plane.events.subscribe(session.id) as messages:
            published.append({})
            async for raw in messages:
                published.append(json.loads(raw))

    listener = asyncio.create_task(listen())
    while not published:
        await asyncio.sleep(0.01)
    try:
        renamed = await actor.rename(f"deploy with {TOKEN}")
        await plane.events.append(AgentText(session_id=session.id, part_id="p", text=TOKEN))
        delta = ToolOutputDelta(session_id=session.id, call_id="c", index=0, data=f"x{TOKEN}")
        await plane.events.append(delta)
        # Set here: the very next event knows it.
        await plane.store.secrets.put(GLOBAL, {"LATER": LATER}, by=None)
        plane.redaction.changed()
        await plane.events.append(AgentText(session_id=session.id, part_id="q", text=LATER))
        await asyncio.sleep(0.2)
    finally:
        listener.cancel()

    stored = await plane.store.events.after(session.id, 0, 100)
    texts = [e.text for e in stored if isinstance(e, AgentText)]
    assert texts == ["[secret:API_TOKEN]", "[secret:LATER]"]
    assert renamed.title == "deploy with [secret:API_TOKEN]"
    assert (await plane.store.sessions.get(session.id)).title == renamed.title  # type: ignore[union-attr]
    [updated] = [e for e in stored if e.type == "session-updated" and e.title]  # type: ignore[union-attr]
    assert updated.title == renamed.title  # type: ignore[union-attr]
    everything = json.dumps([e.model_dump(mode="json") for e in stored]) + json.dumps(published)
    assert TOKEN not in everything and LATER not in everything
    assert "x[secret:API_TOKEN]" in json.dumps(published)  # the live delta, redacted too


async def test_a_new_sessions_title_is_redacted_in_its_row_and_event(
    plane: ControlPlane, origin: Path
) -> None:
    admin = plane.bootstrap.user
    assert admin is not None
    repo = await plane.store.repos.create(
        name="calc", url=str(origin), default_branch="main", created_by=admin.id
    )
    await plane.store.secrets.put(SecretScope(repo.id), {"API_TOKEN": TOKEN}, by=None)
    session = await plane.manager.create(admin, repo="calc", title=f"use {TOKEN}")
    row = await plane.store.sessions.get(session.id)
    [created] = await plane.store.events.after(session.id, 0, 1)
    assert row is not None and row.title == "use [secret:API_TOKEN]"
    assert created.title == row.title  # type: ignore[union-attr]
