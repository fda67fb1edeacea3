"""The session actor, on in-process boxes and the scripted LLM: prompts run one at a time in
FIFO order; a queued prompt can be cancelled, a running one stopped; a retried submit is the same
prompt; the session is active while it has work (a first prompt, the session turning active and
its title are one transaction); and the actor keeps its session's conversation
(a follow-up continues it without reloading it, a restart resumes it from the store)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from openinspect.controlplane import ControlPlane
from openinspect.domain.events import SessionUpdated
from openinspect.domain.models import FINISHED_PROMPT_STATUSES, Prompt, Session, User
from openinspect.errors import PromptNotCancellable, PromptRequestConflict
from openinspect.sessions.actor import SessionActor
from openinspect.settings import (
    AgentSettings,
    ModelProviderSettings,
    SandboxSettings,
    SessionSettings,
    Settings,
)
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.conftest import MODEL
from tests.sessions.bridged import bridged_plane

pytestmark = pytest.mark.timeout(180)


def _settings(home: Path, llm: ScriptedLLMServer) -> Settings:
    return Settings(
        home=home,
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        agent=AgentSettings(default_model=MODEL),
        models=ModelProviderSettings(
            openai_compatible_base_url=llm.openai_base_url, openai_compatible_api_key="k"
        ),
    )


def _admin(plane: ControlPlane) -> User:
    """The admin made on the first start (a restart makes none)."""
    user = plane.bootstrap.user
    assert user is not None
    return user


async def _finished(plane: ControlPlane, prompt: Prompt) -> Prompt:
    async with asyncio.timeout(120):
        while True:
            got = await plane.store.prompts.get(prompt.id)
            assert got is not None
            if got.status in FINISHED_PROMPT_STATUSES:
                return got
            await asyncio.sleep(0.05)


async def test_a_restarted_server_resumes_the_conversation(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset(
        {
            "turns": [
                {"text": "Looking.", "tool_calls": [{"name": "glob", "args": {"pattern": "*"}}]},
                {"text": "The first answer mentions zebra-42."},
                {"text": "The second answer."},
                {"text": "The third answer."},
                {"text": "The fourth answer."},
            ]
        }
    )
    settings = _settings(tmp_path / "home", llm)
    async with bridged_plane(settings, git_proxy=True, in_process=True) as plane:
        user = _admin(plane)
        session = await plane.manager.create(user, repo=str(origin))
        actor = await plane.manager.actor(session.id)
        first = await _finished(plane, await actor.submit(user, "first question"))
        assert first.status == "success", first.error_message
        after_first = await plane.store.sessions.load_conversation(session.id)
        second = await _finished(plane, await actor.submit(user, "second question"))
        assert second.status == "success", second.error_message
        after_second = await plane.store.sessions.load_conversation(session.id)
    # The follow-up appended to what the first prompt stored; nothing before it changed.
    assert after_second[: len(after_first)] == after_first
    assert len(after_second) == len(after_first) + 2

    async with bridged_plane(settings, git_proxy=True, in_process=True) as plane:
        actor = await plane.manager.actor(session.id)
        third = await _finished(plane, await actor.submit(user, "third question"))
        assert third.status == "success", third.error_message
        after_third = await plane.store.sessions.load_conversation(session.id)
        # Taking part is recorded once per person (the actor remembers whom it recorded).
        bo = await plane.store.users.create(name="Bo", email="bo@example.com", role="member")
        fourth = await _finished(plane, await actor.submit(bo, "fourth question"))
        assert fourth.status == "success", fourth.error_message
        roles = await plane.store.sessions.participant_roles(session.id)
        assert roles == {user.id: "owner", bo.id: "member"}
    assert after_third[: len(after_second)] == after_second
    sent = json.dumps(llm.requests[-2].body["messages"])
    for earlier in ("first question", "zebra-42", "second question", "The second answer"):
        assert earlier in sent


@pytest.fixture
async def live(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[ControlPlane]:
    """A control plane whose sessions boot in-process boxes and talk to the scripted LLM."""
    async with bridged_plane(_settings(tmp_path / "home", llm), in_process=True) as plane:
        yield plane


async def _new_session(plane: ControlPlane, origin: Path) -> tuple[User, Session, SessionActor]:
    """A new session of the admin's on ``origin``, and its live actor."""
    user = _admin(plane)
    session = await plane.manager.create(user, repo=str(origin))
    return user, session, await plane.manager.actor(session.id)


async def _started(plane: ControlPlane, prompt: Prompt) -> None:
    async with asyncio.timeout(60):
        while (got := await plane.store.prompts.get(prompt.id)) and got.status == "queued":
            await asyncio.sleep(0.02)


async def _log(plane: ControlPlane, session_id: str) -> list[tuple[str, str | None]]:
    """(type, prompt id) of the session's prompt events, in log order."""
    return [
        (e.type, getattr(e, "prompt_id", None))
        for e in await plane.store.events.after(session_id, 0, 1000)
        if e.type.startswith("prompt-")
    ]


async def test_prompts_run_one_at_a_time_in_the_order_they_were_queued(
    live: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset({"turns": [{"text": f"answer {n}", "delay_ms": 150} for n in range(3)]})
    user, session, actor = await _new_session(live, origin)
    prompts = [await actor.submit(user, f"question {n}") for n in range(3)]
    for prompt in prompts:
        assert (await _finished(live, prompt)).status == "success"
    ids = [p.id for p in prompts]
    lifecycle = [(t, p) for t, p in await _log(live, session.id) if t != "prompt-queued"]
    # Each one starts only after the one before it finished, in FIFO order.
    assert lifecycle == [(t, i) for i in ids for t in ("prompt-started", "prompt-finished")]
    assert [r.body["messages"][-1]["content"] for r in llm.requests] == [
        f"question {n}" for n in range(3)
    ]


async def test_a_queued_prompt_can_be_cancelled_and_never_runs(
    live: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset({"turns": [{"text": "slow", "delay_ms": 1500}, {"text": "never"}]})
    user, session, actor = await _new_session(live, origin)
    running = await actor.submit(user, "first")
    queued = await actor.submit(user, "second")
    await _started(live, running)
    with pytest.raises(PromptNotCancellable) as refused:
        await actor.cancel(running.id)
    assert refused.value.hint is not None and "stop" in refused.value.hint.lower()
    await actor.cancel(queued.id)
    with pytest.raises(PromptNotCancellable):
        await actor.cancel(queued.id)  # cancelled is final
    assert (await _finished(live, running)).status == "success"
    assert (await live.store.prompts.get(queued.id)).status == "cancelled"  # type: ignore[union-attr]
    log = await _log(live, session.id)
    assert ("prompt-cancelled", queued.id) in log
    assert ("prompt-started", queued.id) not in log
    assert len(llm.requests) == 1


async def test_stop_ends_the_running_prompt_and_the_queue_goes_on(
    live: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset({"turns": [{"text": "very slow", "delay_ms": 60_000}, {"text": "next"}]})
    user, _, actor = await _new_session(live, origin)
    assert await actor.stop() is False  # nothing runs yet
    long = await actor.submit(user, "take your time")
    after = await actor.submit(user, "then this")
    async with asyncio.timeout(30):  # the agent is waiting for the model's answer
        while not llm.requests:
            await asyncio.sleep(0.02)
    assert actor.running_prompt_id == long.id
    async with asyncio.timeout(15):  # far less than the model's 60 s
        assert await actor.stop() is True
        stopped = await _finished(live, long)
    assert stopped.status == "stopped"
    assert (await _finished(live, after)).status == "success"


async def test_a_retried_submit_returns_the_same_prompt_and_queues_it_once(
    live: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset({"turns": [{"text": "done"}]})
    user, session, actor = await _new_session(live, origin)
    first = await actor.submit(user, "fix it", client_request_id="req-1")
    again = await actor.submit(user, "fix it", client_request_id="req-1")
    assert again.id == first.id
    with pytest.raises(PromptRequestConflict):
        await actor.submit(user, "something else", client_request_id="req-1")
    await _finished(live, first)
    assert [t for t, _ in await _log(live, session.id)].count("prompt-queued") == 1
    assert len(await live.store.prompts.for_session(session.id)) == 1


async def test_a_first_prompt_its_session_turning_active_and_its_title_are_one_transaction(
    live: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset({"turns": [{"text": "done"}]})
    user, session, actor = await _new_session(live, origin)
    commits: list[object] = []
    engine, count = live.store.engine.sync_engine, commits.append  # one listener, to remove
    sa.event.listen(engine, "commit", count)
    try:
        prompt = await actor.submit(user, "fix the login page\nand the footer")
    finally:
        sa.event.remove(engine, "commit", count)
    assert len(commits) == 1  # not one per event: a round trip each on the way to the model
    assert (actor.session.status, actor.session.title) == ("active", "fix the login page")
    await _finished(live, prompt)
    written = [
        (e.type, getattr(e, "status", None), getattr(e, "title", None))
        for e in await live.store.events.after(session.id, 0, 1000)
        if e.type in ("prompt-queued", "session-updated")
    ]
    assert written[:3] == [
        ("prompt-queued", None, None),
        ("session-updated", "active", None),
        ("session-updated", None, "fix the login page"),
    ]
    stored = await live.manager.get(session.id)
    assert stored.title == "fix the login page"


async def test_a_session_goes_active_while_it_has_work_and_idle_after(
    live: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset({"turns": [{"text": "one", "delay_ms": 200}, {"text": "two"}]})
    user = _admin(live)
    session = await live.manager.create(user, repo=str(origin))
    assert session.status == "created"
    actor = await live.manager.actor(session.id)
    first = await actor.submit(user, "first")
    assert actor.session.status == "active"
    second = await actor.submit(user, "second")
    await _finished(live, first)
    await _finished(live, second)
    async with asyncio.timeout(10):
        while (await live.manager.get(session.id)).status != "idle":
            await asyncio.sleep(0.02)
    statuses = [
        e.status
        for e in await live.store.events.after(session.id, 0, 1000)
        if isinstance(e, SessionUpdated) and e.status is not None
    ]
    assert statuses == ["active", "idle"]  # one stretch of work, not one per prompt
    finished = [await live.store.prompts.get(p.id) for p in (first, second)]
    assert [(p.status, p.started_at is not None) for p in finished if p] == [
        ("success", True),
        ("success", True),
    ]


async def test_a_stop_while_the_prompt_is_starting_is_not_lost(
    live: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    """Stop pressed as soon as ``prompt-started`` is seen, before the agent task exists (it
    still loads the model clients and the conversation): the prompt ends ``stopped``."""
    llm.reset({"turns": [{"text": "very slow", "delay_ms": 60_000}]})
    user, session, actor = await _new_session(live, origin)
    async with live.events.subscribe(session.id) as messages:
        prompt = await actor.submit(user, "take your time")
        async with asyncio.timeout(30):
            async for raw in messages:
                if json.loads(raw)["event"]["type"] == "prompt-started":
                    break
        assert await actor.stop() is True
    async with asyncio.timeout(15):
        assert (await _finished(live, prompt)).status == "stopped"


async def test_a_prompt_whose_start_is_refused_runs_nothing_and_the_queue_goes_on(
    live: ControlPlane, llm: ScriptedLLMServer, origin: Path
) -> None:
    """The actor keeps its queue in memory; the store stays the truth. A prompt cancelled
    behind the actor's back (its mirror is stale) is refused at its guarded start: the run
    launched for it is abandoned before it writes anything, and the queue is read again."""
    llm.reset({"turns": [{"text": "slow", "delay_ms": 1000}, {"text": "b"}, {"text": "c"}]})
    user, session, actor = await _new_session(live, origin)
    first = await actor.submit(user, "first")
    stale = await actor.submit(user, "second")
    await _started(live, first)
    prompts = sa.table("prompts", sa.column("id"), sa.column("status"))
    async with live.store.engine.begin() as conn:
        await conn.execute(
            prompts.update().where(prompts.c.id == stale.id).values(status="cancelled")
        )
    third = await actor.submit(user, "third")
    assert (await _finished(live, first)).status == "success"
    assert (await _finished(live, third)).status == "success"
    assert (await live.store.prompts.get(stale.id)).status == "cancelled"  # type: ignore[union-attr]
    events = await live.store.events.after(session.id, 0, 1000)
    of_stale = [e.type for e in events if getattr(e, "prompt_id", None) == stale.id]
    assert of_stale == ["prompt-queued"]  # no start, no agent output, no end
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
