"""The outbound side's buttons, clicked in the fake Slack: Stop stops the running prompt as the
clicking user, and someone who may not see the session is refused."""

from __future__ import annotations

from typing import Any

from openinspect.testing.llm_server import ScriptedLLMServer
from tests.integrations.slack.conftest import BOT, WAIT_S, SlackWorld, until


def _stop_button(world: SlackWorld, ts: str, session_id: str) -> Any:
    for message in world.fake.thread("C1", ts):
        for block in message.blocks or []:
            for element in block.get("elements") or []:
                if element.get("action_id") == "openinspect_stop":
                    assert element["value"] == session_id
                    return message
    return None


async def test_the_stop_button_stops_the_prompt_and_is_refused_to_others(
    world: SlackWorld, llm: ScriptedLLMServer
) -> None:
    fake, store = world.fake, world.plane.store
    llm.reset({"turns": [{"text": "thinking hard", "delay_ms": 15_000}]})
    ts = await fake.apost_user_message("C1", "U1", f"<@{BOT}> a slow one")
    session = await world.thread_session("C1", ts)
    [prompt] = await world.prompts(session.id, 1)

    async def running_status() -> Any:
        current = await store.prompts.get(prompt.id)
        return (
            _stop_button(world, ts, session.id) if current and current.status == "running" else None
        )

    status = await until(running_status, what="a status message with a Stop button")

    fake.add_user("U2", name="mallory", email="mallory@example.com")
    await world.member("mallory", "mallory@example.com")
    fake.click("U2", action_id="openinspect_stop", value=session.id, message=("C1", status.ts))
    refusal = await until(lambda: _ephemeral_error(world), what="the refusal to mallory")
    assert refusal.slack_user_id == "U2" and "No session" in refusal.body["text"]
    assert (await store.prompts.get(prompt.id)).status == "running"  # type: ignore[union-attr]

    fake.click("U1", action_id="openinspect_stop", value=session.id, message=("C1", status.ts))

    async def stopped() -> Any:
        current = await store.prompts.get(prompt.id)
        return current if current and current.status == "stopped" else None

    await until(stopped, timeout_s=WAIT_S, what="the prompt stopped")


async def _ephemeral_error(world: SlackWorld) -> Any:
    for post in await _all_posts(world):
        if post.key.startswith("error:") and post.kind == "ephemeral":
            return post
    return None


async def _all_posts(world: SlackWorld) -> list[Any]:
    import sqlalchemy as sa

    from openinspect.store.tables import slack_posts

    async with world.plane.store.engine.connect() as conn:
        keys = (await conn.execute(sa.select(slack_posts.c.key))).scalars().all()
    found = [await world.plane.store.slack_threads.post(k) for k in keys]
    return [p for p in found if p is not None]
