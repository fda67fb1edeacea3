"""The Slack routes in the API: listed in the OpenAPI document, the link API's answers, and the
web app's page under /slack served while other /slack paths stay API 404s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.settings import SandboxSettings, SessionSettings, Settings, SlackSettings
from openinspect.testing.asgi import InApp
from openinspect.testing.slack import FakeSlack

TEAM = "T0001"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(signing_secret="s", bot_token="xoxb-t", team_id=TEAM) as slack:
        slack.add_user("U1", name="alice", email="alice@example.com")
        yield slack


@pytest.fixture
async def plane(tmp_path: Path, fake: FakeSlack) -> AsyncIterator[ControlPlane]:
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        sessions=SessionSettings(tidy_interval_s=0),
        slack=SlackSettings(bot_token="xoxb-t", signing_secret="s", api_url=fake.api_url),
    )
    async with open_control_plane(settings) as opened:
        yield opened


async def test_the_slack_doors_are_in_the_openapi_document(api: InApp) -> None:
    paths = (await api.http.get("/api/openapi.json")).json()["paths"]
    for path in ("/slack/events", "/slack/interactions", "/api/slack/link"):
        assert path in paths, path
    assert "/api/slack/link/{code}" in paths
    assert "401" in paths["/slack/events"]["post"]["responses"]


async def test_the_link_api_names_the_slack_user_then_links_the_caller(
    api: InApp, plane: ControlPlane
) -> None:
    code = await plane.store.slack_people.mint_code(TEAM, "U1", 900)
    bob = await api.member("bob")
    info = await bob.call("GET", f"/api/slack/link/{code}")
    assert info.status_code == 200, info.text
    body = info.json()
    assert (body["team_id"], body["slack_user_id"], body["slack_name"]) == (TEAM, "U1", "alice")
    linked = await bob.call("POST", "/api/slack/link", json={"code": code})
    assert linked.status_code == 200, linked.text
    assert linked.json() == {"ok": True, "team_id": TEAM, "slack_user_id": "U1"}
    found = await plane.store.slack_people.get(TEAM, "U1")
    assert found is not None and (found.user_id, found.linked_by) == (bob.user.id, "link")


async def test_unknown_slack_paths_are_api_404s(api: InApp) -> None:
    answer = await api.http.get("/slack/events")
    assert answer.status_code in (404, 405)
    assert answer.headers["content-type"].startswith("application/json")
