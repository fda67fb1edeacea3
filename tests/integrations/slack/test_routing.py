"""Which repo a Slack request goes to: named in the text, the channel's, the App Home default,
else the classifier (the scripted model's structured answer), else the author picks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.repos import make_sample_repo
from tests.integrations.slack.conftest import BOT, TEAM, SlackWorld, slack_world, until

REPO_OF = {"calc": "repo", "widgets": "widgets"}


@pytest.fixture
async def two(tmp_path: Path, llm: ScriptedLLMServer, origin: Path) -> AsyncIterator[SlackWorld]:
    """Two registered repos (calc, widgets); #eng (C1) has no default, #calc-team (C2) has."""
    async with slack_world(tmp_path, llm, origin, channel_repos={"C2": "calc"}) as world:
        root = tmp_path / "widgets"
        root.mkdir()
        await world.plane.store.repos.create(
            name="widgets",
            url=str(make_sample_repo(root)),
            default_branch="main",
            created_by=world.admin.id,
        )
        world.fake.add_user("U1", name="alice", email="alice@example.com")
        world.fake.add_channel("C1", name="eng")
        world.fake.add_channel("C2", name="calc-team")
        await world.member("alice", "alice@example.com")
        yield world


def classifier_says(llm: ScriptedLLMServer, repo: str, confident: bool) -> None:
    llm.reset(
        {
            "turns": [
                {
                    "tool_calls": [
                        {"name": "final_result", "args": {"repo": repo, "confident": confident}}
                    ]
                }
            ]
        }
    )


async def _repo_of(world: SlackWorld, channel: str, ts: str) -> str:
    session = await world.thread_session(channel, ts)
    assert session.repo_id is not None
    repo = await world.plane.store.repos.find(session.repo_id)
    assert repo is not None
    return repo.name


async def test_a_repo_named_in_the_text_or_the_channels_wins_without_asking_a_model(
    two: SlackWorld, llm: ScriptedLLMServer
) -> None:
    fake = two.fake
    llm.reset({"turns": []})
    ts = await fake.apost_user_message("C1", "U1", f"<@{BOT}> in widgets, fix the README")
    assert await _repo_of(two, "C1", ts) == "widgets"
    ts2 = await fake.apost_user_message("C2", "U1", f"<@{BOT}> fix the README")
    assert await _repo_of(two, "C2", ts2) == "calc"
    await two.settled()
    assert not any("Repositories:" in json.dumps(r.body) for r in llm.requests)


async def test_a_confident_classifier_starts_the_session_on_its_choice(
    two: SlackWorld, llm: ScriptedLLMServer
) -> None:
    classifier_says(llm, "widgets", True)
    ts = await two.fake.apost_user_message("C1", "U1", f"<@{BOT}> the gadgets page is broken")
    assert await _repo_of(two, "C1", ts) == "widgets"
    asked = json.dumps(llm.requests[0].body)
    assert "calc" in asked and "widgets" in asked and "the gadgets page is broken" in asked


async def _pick_post(two: SlackWorld, ts: str) -> dict[str, Any]:
    store = two.plane.store

    async def posted() -> dict[str, Any] | None:
        async with store.engine.connect() as conn:
            import sqlalchemy as sa

            from openinspect.store.tables import slack_posts

            rows = (
                await conn.execute(sa.select(slack_posts).where(slack_posts.c.thread_ts == ts))
            ).all()
        for row in rows:
            if row.key.startswith("pick:"):
                body: dict[str, Any] = json.loads(row.body)
                return body
        return None

    return await until(posted, what="the pick notice")


def _click(world: SlackWorld, user: str, button: dict[str, Any], ts: str, trigger: str) -> dict:
    return {
        "type": "block_actions",
        "user": {"id": user, "team_id": TEAM},
        "team": {"id": TEAM},
        "channel": {"id": "C1"},
        "message": {"ts": ts},
        "trigger_id": trigger,
        "actions": [{"action_id": button["action_id"], "value": button["value"], "type": "button"}],
    }


@pytest.mark.parametrize("answer", ["unsure", "not a repo", "no structured answer"])
async def test_an_unsure_classifier_lets_the_author_pick_once(
    two: SlackWorld, llm: ScriptedLLMServer, answer: str
) -> None:
    fake, store = two.fake, two.plane.store
    if answer == "unsure":
        classifier_says(llm, "widgets", False)
    elif answer == "not a repo":
        classifier_says(llm, "../../etc", True)
    else:
        llm.reset({"turns": [{"text": "I think it is widgets"}] * 3})
    ts = await fake.apost_user_message("C1", "U1", f"<@{BOT}> make it faster")
    body = await _pick_post(two, ts)
    buttons = body["blocks"][1]["elements"]
    names = [b["value"].split("|", 1)[1] for b in buttons]
    assert sorted(names) == ["calc", "widgets"]
    if answer == "unsure":
        assert names[0] == "widgets"  # the classifier's guess first
    assert await store.slack_threads.by_thread(TEAM, "C1", ts) is None

    calc = next(b for b in buttons if b["value"].endswith("|calc"))
    fake.add_user("U2", name="mallory", email="mallory@example.com")
    await two.member("mallory", "mallory@example.com")
    status, _, _ = await fake.asend_interaction(_click(two, "U2", calc, ts, "t-mallory"))
    assert status == 200
    status, _, _ = await fake.asend_interaction(_click(two, "U1", calc, ts, "t-alice"))
    assert status == 200
    assert await _repo_of(two, "C1", ts) == "calc"
    session = await two.thread_session("C1", ts)
    [prompt] = await two.prompts(session.id, 1)
    assert prompt.content == "make it faster"
    status, _, _ = await fake.asend_interaction(_click(two, "U1", calc, ts, "t-again"))
    await two.settled()
    assert len(await two.slack_sessions()) == 1
    errors = []
    for trigger in ("t-mallory", "t-again"):
        post = await store.slack_threads.post(f"error:{TEAM}:action:{trigger}:{calc['action_id']}")
        assert post is not None and post.kind == "ephemeral"
        errors.append(post.body["text"])
    assert "only the person who asked" in errors[0]
    assert "chosen already" in errors[1]
