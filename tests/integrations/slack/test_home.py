"""The App Home tab: preferences chosen there change what a new session from Slack uses."""

from __future__ import annotations

import json
from typing import Any

from openinspect.domain.commands import StartSession
from openinspect.testing.slack import FakeSlack
from tests.conftest import MODEL
from tests.integrations.slack.conftest import BOT, TEAM, SlackWorld, until


def _select(blocks: list[dict[str, Any]], action_id: str) -> dict[str, Any]:
    for block in blocks:
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("action_id") == action_id:
            return accessory
    raise AssertionError(f"no select {action_id} in the Home view")


def _options(blocks: list[dict[str, Any]], action_id: str) -> list[str]:
    return [o["value"] for o in _select(blocks, action_id)["options"]]


async def _home(fake: FakeSlack, user: str, edits: int = 0) -> list[dict[str, Any]]:
    def published(f: FakeSlack) -> bool:
        view = f.home_view(user)
        return view is not None and len(f.calls("views.publish")) > edits

    await fake.await_until(published, timeout_s=10)
    view = fake.home_view(user)
    assert view is not None
    return view.blocks


async def test_app_home_preferences_change_the_model_a_new_session_uses(
    world: SlackWorld,
) -> None:
    fake = world.fake
    fake.open_home("U1")
    blocks = await _home(fake, "U1")
    models = _options(blocks, "openinspect_home_model")
    assert models[0] == MODEL  # the server's default first
    demo = "scripted:demo-fix-add"
    assert demo in models
    assert _options(blocks, "openinspect_home_repo") == ["calc"]

    fake.select("U1", action_id="openinspect_home_model", option_value=demo, view="home")
    await until(lambda: _pref(world, "model", demo), what="the model preference")
    blocks = await _home(fake, "U1", edits=1)
    assert _select(blocks, "openinspect_home_model")["initial_option"]["value"] == demo
    efforts = _options(blocks, "openinspect_home_effort")
    fake.select("U1", action_id="openinspect_home_effort", option_value=efforts[-1], view="home")
    await until(lambda: _pref(world, "effort", efforts[-1]), what="the effort preference")

    ts = await fake.apost_user_message("C1", "U1", f"<@{BOT}> add a multiply function")
    session = await world.thread_session("C1", ts)
    assert (session.model, session.effort) == (demo, efforts[-1])


async def _pref(world: SlackWorld, name: str, value: str) -> bool:
    found = await world.plane.store.slack_people.get(TEAM, "U1")
    return found is not None and getattr(found, name) == value


async def test_a_select_value_that_was_not_offered_is_refused(world: SlackWorld) -> None:
    fake, store = world.fake, world.plane.store
    payload = {
        "type": "block_actions",
        "user": {"id": "U1", "team_id": TEAM},
        "team": {"id": TEAM},
        "trigger_id": "trig-forged-select",
        "view": {"type": "home"},
        "actions": [
            {
                "action_id": "openinspect_home_model",
                "type": "static_select",
                "selected_option": {"value": "anthropic:not-a-model"},
            }
        ],
    }
    status, _, _ = await fake.asend_interaction(payload)
    assert status == 200
    await world.settled()
    row = await store.slack_inbox.by_key(f"action:{TEAM}:trig-forged-select")
    assert row is not None and row.status == "done"
    prefs = await store.slack_people.get(TEAM, "U1")
    assert prefs is None or prefs.model is None


async def test_the_home_lists_recent_sessions_with_links(world: SlackWorld) -> None:
    fake, store = world.fake, world.plane.store
    alice = (await store.users.with_email("alice@example.com"))[0]
    started = await world.plane.commands.handle(
        alice, StartSession(repo="calc", title="Make <calc> faster & better"), origin="web"
    )
    fake.open_home("U1")
    blocks = await _home(fake, "U1")
    text = json.dumps(blocks)
    assert f"/sessions/{started.session.id}|Make &lt;calc&gt; faster &amp; better>" in text


async def test_an_unlinked_user_home_offers_the_link(world: SlackWorld) -> None:
    fake = world.fake
    fake.add_user("U7", name="erin", email="erin@nowhere.example")
    fake.open_home("U7")
    blocks = await _home(fake, "U7")
    button = blocks[-1]["elements"][0]
    assert button["url"].startswith(world.url + "/slack/link?code=")
