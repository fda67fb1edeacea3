"""``CommandHandler.handle``: each command does what it says for someone who may, and nothing for
someone who may not (the same ``session_not_found`` as for a session that does not exist)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.commands import (
    CancelPrompt,
    OpenPullRequest,
    SessionCommand,
    SetPresence,
    StartSession,
    Stop,
    SubmitPrompt,
    Typing,
    UpdateSession,
)
from openinspect.domain.models import Author, User
from openinspect.errors import (
    IdempotencyKeyReused,
    InvalidInput,
    OriginNotAllowed,
    PromptNotFound,
    SessionNotFound,
)
from openinspect.sessions.commands import CommandHandler, client_origin
from tests.store.records import prompt_record

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def handler(plane: ControlPlane) -> CommandHandler:
    return plane.commands


@pytest.fixture
def admin(plane: ControlPlane) -> User:
    assert plane.bootstrap.user is not None
    return plane.bootstrap.user


async def _member(plane: ControlPlane, name: str = "mallory") -> User:
    return await plane.store.users.create(name=name, email=f"{name}@example.com", role="member")


async def test_start_records_the_origin_the_door_gives(
    handler: CommandHandler, plane: ControlPlane, admin: User, origin: Path
) -> None:
    started = await handler.handle(
        admin, StartSession(repo=str(origin), origin_ref="thread-1"), origin="slack"
    )
    assert not started.replayed and started.prompt is None
    stored = await plane.store.sessions.get(started.session.id)
    assert stored is not None
    assert (stored.origin, stored.origin_ref, stored.creator_id) == ("slack", "thread-1", admin.id)
    created = (await plane.store.events.after(stored.id, 0, 10))[0]
    assert created.type == "session-created" and created.origin == "slack"  # type: ignore[union-attr]


async def test_a_retried_start_returns_the_same_session_and_queues_its_prompt_once(
    handler: CommandHandler, plane: ControlPlane, admin: User, origin: Path
) -> None:
    command = StartSession(repo=str(origin), prompt="fix it", idempotency_key="key-1")
    first = await handler.handle(admin, command, origin="web")
    again = await handler.handle(admin, command, origin="web")
    assert again.replayed and not first.replayed
    assert again.session.id == first.session.id
    assert first.prompt is not None and again.prompt is not None
    assert again.prompt.id == first.prompt.id
    assert len(await plane.store.prompts.for_session(first.session.id)) == 1
    listed = await plane.store.sessions.list(limit=10)
    assert [s.id for s in listed] == [first.session.id]


async def test_a_reused_key_with_another_request_is_refused_and_makes_nothing(
    handler: CommandHandler, plane: ControlPlane, admin: User, origin: Path
) -> None:
    await handler.handle(admin, StartSession(repo=str(origin), idempotency_key="k"), origin="api")
    for different, door in (
        (StartSession(repo=str(origin), title="Other", idempotency_key="k"), "api"),
        (StartSession(repo=str(origin), idempotency_key="k"), "cli"),  # another door
    ):
        with pytest.raises(IdempotencyKeyReused) as refused:
            await handler.handle(admin, different, origin=door)  # type: ignore[arg-type]
        assert refused.value.code == "idempotency_key_reused" and refused.value.status == 409
    assert len(await plane.store.sessions.list(limit=10)) == 1


async def test_keys_are_per_creator(
    handler: CommandHandler, plane: ControlPlane, admin: User, origin: Path
) -> None:
    other = await plane.store.users.create(name="Root2", email="r2@example.com", role="admin")
    command = StartSession(repo=str(origin), idempotency_key="same")
    mine = await handler.handle(admin, command, origin="api")
    theirs = await handler.handle(other, command, origin="api")
    assert mine.session.id != theirs.session.id
    assert theirs.session.creator_id == other.id and not theirs.replayed


async def test_each_session_command_works_for_its_owner(
    handler: CommandHandler, plane: ControlPlane, admin: User, origin: Path
) -> None:
    sid = (await handler.handle(admin, StartSession(repo=str(origin)), origin="api")).session.id
    # A command first, so that this replica owns the session before the prompt is stored
    # behind its back: taken with a queued prompt, the session would start running it.
    renamed = await handler.handle(
        admin, UpdateSession(session_id=sid, title=" Tidy "), origin="api"
    )
    assert renamed.title == "Tidy"
    queued = prompt_record(sid, Author.of(admin))
    await plane.store.prompts.create(queued, "print")
    cancelled = await handler.handle(
        admin, CancelPrompt(session_id=sid, prompt_id=queued.id), origin="api"
    )
    assert cancelled.id == queued.id and cancelled.status == "cancelled"
    assert await handler.handle(admin, Stop(session_id=sid), origin="api") is False
    await plane.manager.presence.join(sid, "client-1", admin.id, admin.name)
    await handler.handle(
        admin, SetPresence(session_id=sid, client_id="client-1", status="idle"), origin="api"
    )
    assert (await plane.manager.presence.snapshot(sid))[0]["status"] == "idle"
    archived = await handler.handle(
        admin, UpdateSession(session_id=sid, archived=True), origin="api"
    )
    assert (archived.title, archived.status) == ("Tidy", "archived")
    back = await handler.handle(admin, UpdateSession(session_id=sid, archived=False), origin="api")
    assert back.status == "idle"
    with pytest.raises(InvalidInput):
        await handler.handle(admin, UpdateSession(session_id=sid, title="two\nlines"), origin="api")
    prompt = await handler.handle(
        admin, SubmitPrompt(session_id=sid, content="go", client_request_id="r"), origin="api"
    )
    assert prompt.session_id == sid and prompt.author.id == admin.id
    with pytest.raises(PromptNotFound):
        await handler.handle(
            admin, CancelPrompt(session_id=sid, prompt_id="prm_nope"), origin="api"
        )


async def test_typing_warms_the_sandbox(
    handler: CommandHandler, plane: ControlPlane, admin: User, origin: Path
) -> None:
    sid = (await handler.handle(admin, StartSession(repo=str(origin)), origin="api")).session.id
    assert await handler.handle(admin, Typing(session_id=sid), origin="api") is None
    async with asyncio.timeout(30):  # the box starts booting before any prompt
        while not [
            e for e in await plane.store.events.after(sid, 0, 100) if e.type == "sandbox-status"
        ]:
            await asyncio.sleep(0.05)


async def test_a_prompt_of_another_session_cannot_be_cancelled_through_this_one(
    handler: CommandHandler, plane: ControlPlane, admin: User, origin: Path
) -> None:
    one = (await handler.handle(admin, StartSession(repo=str(origin)), origin="api")).session.id
    two = (await handler.handle(admin, StartSession(repo=str(origin)), origin="api")).session.id
    elsewhere = prompt_record(two, Author.of(admin))
    await plane.store.prompts.create(elsewhere, "print")
    with pytest.raises(PromptNotFound):
        await handler.handle(
            admin, CancelPrompt(session_id=one, prompt_id=elsewhere.id), origin="api"
        )
    assert (await plane.store.prompts.get(elsewhere.id)).status == "queued"  # type: ignore[union-attr]


def _every_command(sid: str, prompt_id: str) -> list[SessionCommand]:
    return [
        SubmitPrompt(session_id=sid, content="rm -rf"),
        CancelPrompt(session_id=sid, prompt_id=prompt_id),
        Stop(session_id=sid),
        Typing(session_id=sid),
        SetPresence(session_id=sid, client_id="c", status="idle"),
        UpdateSession(session_id=sid, title="mine now", archived=True),
        OpenPullRequest(session_id=sid, title="pr"),
    ]


async def test_a_member_cannot_act_on_someone_elses_session(
    handler: CommandHandler, plane: ControlPlane, admin: User, origin: Path
) -> None:
    sid = (await handler.handle(admin, StartSession(repo=str(origin)), origin="api")).session.id
    queued = prompt_record(sid, Author.of(admin))
    await plane.store.prompts.create(queued, "print")
    mallory = await _member(plane)
    before = await plane.store.events.after(sid, 0, 100)
    for command in _every_command(sid, queued.id):
        with pytest.raises(SessionNotFound):
            await handler.handle(mallory, command, origin="api")
    # Nothing changed: no event, the prompt is still queued, the title and status are as before.
    assert await plane.store.events.after(sid, 0, 100) == before
    assert (await plane.store.prompts.get(queued.id)).status == "queued"  # type: ignore[union-attr]
    session = await plane.store.sessions.get(sid)
    assert session is not None and (session.title, session.status) != ("mine now", "archived")
    assert mallory.id not in await plane.store.sessions.participant_roles(sid)
    # A session that does not exist gives the same answer.
    with pytest.raises(SessionNotFound):
        await handler.handle(mallory, Stop(session_id="ses_nope"), origin="api")


@pytest.mark.parametrize("claimed", ["web", "cli", "api", None])
def test_a_client_may_claim_the_client_doors(claimed: str | None) -> None:
    assert client_origin(claimed) == (claimed or "api")


@pytest.mark.parametrize("claimed", ["slack", "linear", "github", "schedule", "parent", "WEB", ""])
def test_a_client_may_not_claim_an_integrations_door(claimed: str) -> None:
    with pytest.raises(OriginNotAllowed) as refused:
        client_origin(claimed)
    assert refused.value.status == 403 and refused.value.code == "origin_not_allowed"
