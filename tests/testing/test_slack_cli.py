"""``openinspect testing slack-server``: starts, prints settings that work, serves the Web API
and the control endpoints, delivers to the events URL, and stops on Ctrl-C."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from slack_sdk.web import WebClient

from openinspect.testing.slack.cli import parse_channel, parse_user
from tests.testing.cli_process import fake_server_cli
from tests.testing.slack_receiver import Receiver


@contextlib.contextmanager
def slack_server_cli(args: list[str]) -> Iterator[dict[str, str]]:
    with fake_server_cli("slack-server", args, "OPENINSPECT_SLACK__") as (env, _printed):
        yield env


def test_cli_serves_and_delivers() -> None:
    with Receiver("cli-secret") as receiver:
        args = [
            "--port", "0", "--signing-secret", "cli-secret", "--bot-token", "xoxb-cli",
            "--events-url", receiver.events_url,
            "--user", "U1:alice:alice@example.com", "--channel", "C1:eng",
        ]  # fmt: skip
        with slack_server_cli(args) as env:
            assert env["OPENINSPECT_SLACK__BOT_TOKEN"] == "xoxb-cli"
            assert env["OPENINSPECT_SLACK__SIGNING_SECRET"] == "cli-secret"
            assert env["OPENINSPECT_SLACK__APP_TOKEN"] == "xapp-test"
            api_url = env["OPENINSPECT_SLACK__API_URL"]
            client = WebClient(token="xoxb-cli", base_url=api_url)
            assert client.users_lookupByEmail(email="alice@example.com")["user"]["id"] == "U1"
            base = api_url.removesuffix("/api/")
            posted = httpx.post(
                f"{base}/_fake/messages", json={"channel": "C1", "user": "U1", "text": "<@UBOT> hi"}
            )
            assert posted.status_code == 200
            ts = posted.json()["ts"]
            listed = httpx.get(f"{base}/_fake/messages", params={"channel": "C1"}).json()
            assert [m["ts"] for m in listed["messages"]] == [ts]
            waited = httpx.get(f"{base}/_fake/deliveries", params={"wait_s": "10"}, timeout=15)
            done = waited.json()["deliveries"]
            assert [d["attempts"] for d in done] == [[200], [200]]
            assert [r.json["event"]["type"] for r in receiver.received] == [
                "app_mention",
                "message",
            ]
            assert all(r.valid for r in receiver.received)
            client.chat_postEphemeral(channel="C1", user="U1", text="only you see this")
            seen = httpx.get(f"{base}/_fake/ephemerals", params={"user": "U1"}).json()
            assert [e["text"] for e in seen["ephemerals"]] == ["only you see this"]


def test_cli_refuses_bad_specs() -> None:
    for args in (["--user", "alice"], ["--channel", "eng"]):
        result = subprocess.run(
            [sys.executable, "-m", "openinspect", "testing", "slack-server", "--port", "0", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2 and "expected --" in result.stderr


def test_spec_parsing() -> None:
    assert parse_user("U1:alice") == ("U1", "alice", None)
    assert parse_user("U1:alice:a@x.org") == ("U1", "alice", "a@x.org")
    assert parse_channel("C1:eng") == ("C1", "eng")
    for bad in ("U1", "x:alice", "U1:Al ice", "U1:alice:nomail"):
        with pytest.raises(ValueError, match="--user"):
            parse_user(bad)
    with pytest.raises(ValueError, match="--channel"):
        parse_channel("C1")
