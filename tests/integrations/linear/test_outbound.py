"""The Linear projection, fed events directly: an action per tool call up to the cap per
minute and one line for the rest, the pull request in the links and the final response, a
failure as an error naming only its code, a stop as "Stopped as asked.", and every decision
once however often a batch is handled again."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from openinspect.domain.events import (
    AgentText,
    ErrorInfo,
    Event,
    PromptFinished,
    PromptStarted,
    PrOpened,
    ToolCall,
    utcnow,
)
from openinspect.integrations.linear.outbound import ACTIONS_PER_MINUTE, STOPPED, LinearOutbound
from openinspect.settings import ServerSettings, Settings
from openinspect.store import Store
from openinspect.store.crypto import Sealer
from openinspect.store.feed import FeedBatch, FeedEntry
from openinspect.store.outbox import OutboxRow
from tests.store.records import session_record

AGENT = "as-1"
SESSION = "ses_0000000000aa"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(
        f"sqlite+aiosqlite:///{tmp_path}/oi.db", sealer=Sealer(os.urandom(32))
    )
    admin = await opened.users.add(name="ada", email="ada@example.com", role="admin")
    await opened.sessions.create(session_record(SESSION, admin.id))
    async with opened.engine.begin() as conn:
        await opened.linear.create_session(
            conn,
            agent_session_id=AGENT,
            org_id="org-1",
            issue_id="i-1",
            issue_identifier="ENG-1",
            issue_url=None,
            linear_user_id=None,
        )
    assert await opened.linear.link(AGENT, SESSION)
    try:
        yield opened
    finally:
        await opened.close()


def projection(store: Store) -> LinearOutbound:
    return LinearOutbound(store, Settings(server=ServerSettings(public_url="https://oi.example")))


async def feed(store: Store, events: list[Event]) -> None:
    batch = FeedBatch([FeedEntry(i, e) for i, e in enumerate(events)], len(events))
    async with store.engine.begin() as conn:
        await projection(store).on_feed(batch, conn)


async def rows(store: Store) -> list[OutboxRow]:
    return await store.outbox.for_session(SESSION, source="linear")


def calls(count: int, start_seq: int = 10, spread: timedelta = timedelta(seconds=1)) -> list[Event]:
    at = utcnow()
    return [
        ToolCall(
            session_id=SESSION,
            seq=start_seq + i,
            ts=at + spread * i,
            prompt_id="p1",
            call_id=f"c{i}",
            tool="bash",
            args={"command": f"echo {i}\nsecond line"},
        )
        for i in range(count)
    ]


async def test_actions_are_capped_per_minute_and_the_rest_summed_up(store: Store) -> None:
    started = PromptStarted(session_id=SESSION, seq=1, prompt_id="p1", model="m", effort=None)
    over = ACTIONS_PER_MINUTE + 3
    events: list[Event] = [started, *calls(over)]
    events += [
        AgentText(session_id=SESSION, seq=40, prompt_id="p1", part_id="t", text="All fixed."),
        PrOpened(
            session_id=SESSION, seq=41, prompt_id="p1", url="https://gh.example/pr/7", number=7
        ),
        PromptFinished(session_id=SESSION, seq=42, prompt_id="p1", status="success"),
    ]
    await feed(store, events)
    await feed(store, events)  # handled again after a crash: nothing twice
    found = await rows(store)
    actions = [r for r in found if r.kind == "action"]
    assert len(actions) == ACTIONS_PER_MINUTE + 1
    assert all(r.body["ephemeral"] for r in actions)
    first = actions[0].body["content"]
    assert first == {"type": "action", "action": "bash", "parameter": "echo 0 second line"}
    assert actions[-1].body["content"]["parameter"] == "3 tool calls"
    [links] = [r for r in found if r.kind == "links"]
    assert links.key == f"urls:{AGENT}:pr:7"
    assert [u["url"] for u in links.body["externalUrls"]] == [
        f"https://oi.example/sessions/{SESSION}",
        "https://gh.example/pr/7",
    ]
    [final] = [r for r in found if r.kind == "response"]
    assert final.key == "final:p1" and final.target == {
        "org_id": "org-1",
        "agent_session_id": AGENT,
    }
    assert final.body["content"]["body"] == "All fixed.\n\nPull request: https://gh.example/pr/7"
    assert [r.kind for r in found][-1] == "response"  # the summary line comes before it


async def test_a_new_minute_says_what_the_last_one_skipped(store: Store) -> None:
    events = calls(ACTIONS_PER_MINUTE + 2, spread=timedelta(seconds=1))
    events += calls(1, start_seq=90, spread=timedelta(0))
    events[-1] = events[-1].model_copy(update={"ts": events[0].ts + timedelta(minutes=2)})
    await feed(store, events)
    params = [r.body["content"]["parameter"] for r in await rows(store)]
    assert params[-2:] == ["2 tool calls", "echo 0 second line"]


async def test_a_failure_is_an_error_with_its_code_and_a_stop_is_said(store: Store) -> None:
    failed = PromptFinished(
        session_id=SESSION,
        seq=5,
        prompt_id="p1",
        status="error",
        error=ErrorInfo(code="model_failed", message="Traceback at /srv/secret/path.py"),
    )
    stopped = PromptFinished(session_id=SESSION, seq=6, prompt_id="p2", status="stopped")
    await feed(store, [failed, stopped])
    error, stop = await rows(store)
    body = error.body["content"]["body"]
    assert error.kind == "error" and "model_failed" in body and "/srv/secret" not in body
    assert f"https://oi.example/sessions/{SESSION}" in body
    assert stop.kind == "response" and stop.body["content"]["body"] == STOPPED


async def test_sessions_that_report_to_no_agent_session_are_left_alone(store: Store) -> None:
    other = "ses_0000000000bb"
    admin = await store.users.with_email("ada@example.com")
    await store.sessions.create(session_record(other, admin[0].id))
    await feed(store, [PromptFinished(session_id=other, seq=1, prompt_id="px", status="success")])
    assert await store.outbox.for_session(other) == []
