"""``openinspect doctor`` with Slack configured: it asks Slack (here the fake) whether the bot
token is good, names a missing setting of the chosen mode, and says nothing of Slack when it is
off."""

from __future__ import annotations

import json
from pathlib import Path

from openinspect.testing.slack import FakeSlack

from .helpers import cli


def slack_check(home: Path, **env: str) -> dict[str, object] | None:
    done = cli("doctor", "--json", env={"OPENINSPECT_HOME": str(home), **env})
    found = {c["name"]: c for c in map(json.loads, done.stdout.splitlines())}
    return found.get("slack")


def test_the_doctor_checks_the_bot_token_with_slack(tmp_path: Path) -> None:
    with FakeSlack(bot_token="xoxb-good", signing_secret="s") as slack:
        good = slack_check(
            tmp_path,
            OPENINSPECT_SLACK__BOT_TOKEN="xoxb-good",
            OPENINSPECT_SLACK__SIGNING_SECRET="s",
            OPENINSPECT_SLACK__API_URL=slack.api_url,
        )
        bad = slack_check(
            tmp_path,
            OPENINSPECT_SLACK__BOT_TOKEN="xoxb-wrong",
            OPENINSPECT_SLACK__SIGNING_SECRET="s",
            OPENINSPECT_SLACK__API_URL=slack.api_url,
        )
    assert good is not None and good["ok"] is True, good
    assert "events mode" in str(good["detail"])
    assert bad is not None and bad["ok"] is False
    assert "invalid_auth" in str(bad["detail"]) and "xoxb-wrong" not in json.dumps(bad)


def test_the_doctor_names_what_socket_mode_lacks_and_is_silent_without_slack(
    tmp_path: Path,
) -> None:
    lacking = slack_check(
        tmp_path, OPENINSPECT_SLACK__BOT_TOKEN="xoxb-x", OPENINSPECT_SLACK__MODE="socket"
    )
    assert lacking is not None and lacking["ok"] is False
    assert "OPENINSPECT_SLACK__APP_TOKEN" in str(lacking["detail"])
    assert slack_check(tmp_path) is None
