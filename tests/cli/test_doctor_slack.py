"""``openinspect doctor`` with Slack configured: it asks Slack (here the fake) whether the bot
token is good, names a missing setting of the chosen mode, and says nothing of Slack when it is
off. In-process: the check is ``doctor.slack_check``; the CLI around it is tested elsewhere."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from openinspect.cli.doctor import slack_check
from openinspect.settings import Settings, SlackSettings
from openinspect.testing.slack import FakeSlack


def settings(home: Path, **slack: object) -> Settings:
    return Settings(home=home, slack=SlackSettings.model_validate(slack))


async def test_the_doctor_checks_the_bot_token_with_slack(tmp_path: Path) -> None:
    async with FakeSlack(bot_token="xoxb-good", signing_secret="s") as slack:
        good = await slack_check(
            settings(tmp_path, bot_token="xoxb-good", signing_secret="s", api_url=slack.api_url)
        )
        bad = await slack_check(
            settings(tmp_path, bot_token="xoxb-wrong", signing_secret="s", api_url=slack.api_url)
        )
    assert good is not None and good.ok, good
    assert "events mode" in good.detail and "@openinspect" in good.detail
    assert bad is not None and not bad.ok
    assert "invalid_auth" in bad.detail and "xoxb-wrong" not in json.dumps(asdict(bad))


async def test_the_doctor_names_what_a_mode_lacks_and_is_silent_without_slack(
    tmp_path: Path,
) -> None:
    lacking = await slack_check(settings(tmp_path, bot_token="xoxb-x", mode="socket"))
    assert lacking is not None and not lacking.ok
    assert "OPENINSPECT_SLACK__APP_TOKEN" in lacking.detail
    unsigned = await slack_check(settings(tmp_path, bot_token="xoxb-x"))
    assert unsigned is not None and "OPENINSPECT_SLACK__SIGNING_SECRET" in unsigned.detail
    assert await slack_check(settings(tmp_path)) is None
