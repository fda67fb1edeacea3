"""Spend limits on a live session, on in-process boxes and a scripted model whose every response
costs a known amount (10,000 input tokens at the scripted price of $1 per million: one cent):
the queue pauses at the limit with one ``spend-limit-reached`` event (the running prompt ends
with ``spend_limit``, the next one stays queued), raising the limit resumes it, re-sent usage
events do not count twice, and the per-prompt token cap ends a prompt on its own."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.domain.events import Usage
from openinspect.domain.models import FINISHED_PROMPT_STATUSES, Prompt
from openinspect.sessions.spend import limits_changed
from openinspect.settings import (
    AgentSettings,
    ModelProviderSettings,
    SandboxSettings,
    SessionSettings,
    Settings,
)
from openinspect.store.changes import Change
from openinspect.store.spend import ANY
from tests.sessions.bridged import bridged_plane

pytestmark = pytest.mark.timeout(180)
CENT_TOKENS = 10_000
RECHECK_S = 0.3


def _turn(text: str, *, tool: bool) -> dict[str, object]:
    turn: dict[str, object] = {"text": text, "input_tokens": CENT_TOKENS}
    if tool:
        turn["tool_calls"] = [{"name": "glob", "args": {"pattern": "*.py"}}]
    return turn


def _settings(
    tmp_path: Path, script: dict[str, object], recheck_s: float = RECHECK_S, **agent: object
) -> Settings:
    (tmp_path / "scripts").mkdir(exist_ok=True)
    (tmp_path / "scripts" / "spend.json").write_text(json.dumps(script))
    return Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        agent=AgentSettings(
            default_model="scripted:spend.json", spend_recheck_s=recheck_s, **agent
        ),
        models=ModelProviderSettings(scripted_dir=tmp_path / "scripts"),
    )


async def _finished(plane: ControlPlane, prompt: Prompt) -> Prompt:
    async with asyncio.timeout(120):
        while True:
            got = await plane.store.prompts.get(prompt.id)
            assert got is not None
            if got.status in FINISHED_PROMPT_STATUSES:
                return got
            await asyncio.sleep(0.05)


async def test_the_queue_pauses_at_the_limit_and_resumes_when_it_is_raised(
    tmp_path: Path, origin: Path
) -> None:
    script = {
        "turns": [
            _turn("one", tool=True),
            _turn("two", tool=True),
            _turn("three", tool=True),  # never asked for: the limit ends the prompt first
            _turn("first done", tool=False),
        ]
    }
    async with bridged_plane(_settings(tmp_path, script), in_process=True) as plane:
        user = plane.bootstrap.user
        assert user is not None
        await plane.store.spend.set_limit("global", ANY, 0.02, by=user.id)
        session = await plane.manager.create(user, repo=str(origin))
        actor = await plane.manager.actor(session.id)
        first = await actor.submit(user, "spend")
        second = await actor.submit(user, "then this")
        ended = await _finished(plane, first)
        assert ended.status == "error" and ended.error_code == "spend_limit"
        assert "$0.02" in (ended.error_message or "")
        # Paused: the next prompt stays queued past several rechecks.
        await asyncio.sleep(RECHECK_S * 5)
        waiting = await plane.store.prompts.get(second.id)
        assert waiting is not None and waiting.status == "queued"
        events = await plane.store.events.after(session.id, 0, 500)
        reached = [e for e in events if e.type == "spend-limit-reached"]
        assert len(reached) == 1, "one event however often the paused queue looks again"
        event = reached[0]
        assert (event.scope, event.limit_usd) == ("global", 0.02)  # type: ignore[union-attr]
        assert 0.02 <= event.spent_usd < 0.021  # type: ignore[union-attr]
        assert "openinspect limits set global" in event.hint  # type: ignore[union-attr]
        usage = [e for e in events if isinstance(e, Usage)]
        assert len(usage) == 2
        spent = await plane.store.spend.spent_by_tree(session.id)
        assert spent == pytest.approx(sum(u.cost_usd for u in usage))
        # Re-sent usage events are neither stored nor counted again.
        for again in usage:
            await plane.store.events.commit([Change(again.model_copy(update={"seq": 0}))])
        assert await plane.store.spend.spent_by_tree(session.id) == pytest.approx(spent)
        stored = await plane.store.sessions.get(session.id)
        assert stored is not None and stored.total_cost_usd == pytest.approx(spent)
        # Raised through the store alone (as on another replica): the recheck resumes it.
        await plane.store.spend.set_limit("global", ANY, 1.0, by=user.id)
        done = await _finished(plane, second)
        assert done.status == "success", done.error_message
        events = await plane.store.events.after(session.id, 0, 500)
    types = [e.type for e in events]
    assert types.count("spend-limit-lifted") == 1
    assert types.index("spend-limit-lifted") < types.index(
        "prompt-started", types.index("spend-limit-lifted")
    )


async def test_a_persons_daily_limit_pauses_before_the_prompt_starts(
    tmp_path: Path, origin: Path
) -> None:
    # No recheck within the test: only the wake a limit change sends over the bus resumes.
    script = {"turns": [_turn("done", tool=False), _turn("later", tool=False)]}
    settings = _settings(tmp_path, script, recheck_s=600)
    async with bridged_plane(settings, in_process=True) as plane:
        user = plane.bootstrap.user
        assert user is not None
        session = await plane.manager.create(user, repo=str(origin))
        actor = await plane.manager.actor(session.id)
        first = await _finished(plane, await actor.submit(user, "one"))
        assert first.status == "success"
        await plane.store.spend.set_limit("user-daily", ANY, 0.005, by=user.id)
        second = await actor.submit(user, "two")
        async with asyncio.timeout(30):
            while not any(
                e.type == "spend-limit-reached"
                for e in await plane.store.events.after(session.id, 0, 500)
            ):
                await asyncio.sleep(0.05)
        waiting = await plane.store.prompts.get(second.id)
        assert waiting is not None and waiting.status == "queued"
        events = await plane.store.events.after(session.id, 0, 500)
        [reached] = [e for e in events if e.type == "spend-limit-reached"]
        assert reached.scope == "user-daily" and reached.user_id == user.id  # type: ignore[union-attr]
        assert "00:00 UTC" in reached.hint  # type: ignore[union-attr]
        await plane.store.spend.set_limit("user-daily", ANY, None, by=user.id)
        # Announced as another server would, which owns none of the sessions.
        await limits_changed(plane.bus, [])
        done = await _finished(plane, second)
        assert done.status == "success", done.error_message


async def test_the_token_cap_ends_a_prompt(tmp_path: Path, origin: Path) -> None:
    script = {"turns": [_turn(str(n), tool=True) for n in range(5)]}
    settings = _settings(tmp_path, script, max_tokens_per_prompt=CENT_TOKENS * 2)
    async with bridged_plane(settings, in_process=True) as plane:
        user = plane.bootstrap.user
        assert user is not None
        session = await plane.manager.create(user, repo=str(origin))
        actor = await plane.manager.actor(session.id)
        ended = await _finished(plane, await actor.submit(user, "go"))
        events = await plane.store.events.after(session.id, 0, 500)
    assert ended.status == "error" and ended.error_code == "token_limit"
    assert "20,000" in (ended.error_message or "")
    assert len([e for e in events if e.type == "usage"]) == 2
