"""``openinspect testing linear-server``: starts, prints settings and seeded names that work,
answers GraphQL, is driven through ``/_fake``, delivers signed webhooks, stops on Ctrl-C."""

from __future__ import annotations

import re

import httpx
from typer.testing import CliRunner

from openinspect.cli.main import app
from tests.testing.cli_process import fake_server_cli
from tests.testing.linear.documents import AGENT_ACTIVITY_CREATE, ISSUE, VIEWER, data
from tests.testing.linear.receiver import Receiver


def test_cli_serves_graphql_control_and_webhooks() -> None:
    with Receiver("cli-whsec") as receiver:
        args = [
            "--port",
            "0",
            "--webhook-url",
            receiver.url,
            "--webhook-secret",
            "cli-whsec",
            "--client-id",
            "cli-cid",
            "--client-secret",
            "cli-csecret",
        ]
        with fake_server_cli("linear-server", args, "OPENINSPECT_LINEAR__") as (env, printed):
            assert env["OPENINSPECT_LINEAR__CLIENT_ID"] == "cli-cid"
            assert env["OPENINSPECT_LINEAR__CLIENT_SECRET"] == "cli-csecret"
            assert env["OPENINSPECT_LINEAR__WEBHOOK_SECRET"] == "cli-whsec"
            base = env["OPENINSPECT_LINEAR__API_URL"]
            assert env["OPENINSPECT_LINEAR__AUTHORIZE_URL"] == f"{base}/oauth/authorize"
            issue_id = re.search(r"Issue: ENG-1 .* \(([0-9a-f-]{36})\)", printed)
            user_id = re.search(
                r"User: Alice Example <alice@example.com> \(([0-9a-f-]{36})\)", printed
            )
            assert issue_id and user_id, printed
            with httpx.Client(base_url=base, timeout=15) as http:
                token = http.post("/_fake/token", json={}).json()["access_token"]
                auth = {"Authorization": f"Bearer {token}"}
                viewer = http.post("/graphql", json={"query": VIEWER}, headers=auth)
                assert data(viewer)["viewer"]["name"] == "openinspect"
                issue = http.post(
                    "/graphql", json={"query": ISSUE, "variables": {"id": "ENG-1"}}, headers=auth
                )
                assert data(issue)["issue"]["id"] == issue_id.group(1)
                started = http.post(
                    "/_fake/mention", json={"issue": "ENG-1", "user": user_id.group(1)}
                )
                sid = started.json()["agent_session_id"]
                made = http.post(
                    "/graphql",
                    headers=auth,
                    json={
                        "query": AGENT_ACTIVITY_CREATE,
                        "variables": {
                            "input": {
                                "agentSessionId": sid,
                                "content": {"type": "thought", "body": "On it"},
                            }
                        },
                    },
                )
                assert data(made)["agentActivityCreate"]["success"]
                http.post(
                    "/_fake/prompt", json={"session": sid, "user": user_id.group(1), "body": "more"}
                )
                http.post("/_fake/stop", json={"session": sid, "user": user_id.group(1)})
                waited = http.get("/_fake/deliveries", params={"wait_s": "10"}).json()
                assert [
                    (d["action"], [a["result"] for a in d["attempts"]])
                    for d in waited["deliveries"]
                ] == [("created", [200]), ("prompted", [200]), ("prompted", [200])]
                session = http.get(f"/_fake/sessions/{sid}").json()
                assert [a["type"] for a in session["activities"]] == ["thought", "prompt", "prompt"]
                assert (
                    session["status"] == "pending" and session["activities"][2]["signal"] == "stop"
                )
        assert all(r.valid for r in receiver.received)
        assert [r.json["action"] for r in receiver.received] == ["created", "prompted", "prompted"]


def test_cli_refuses_bad_options() -> None:
    runner = CliRunner()
    for bad in (["--webhook-url", "ftp://example.test/hook"], ["--client-secret", ""]):
        result = runner.invoke(app, ["testing", "linear-server", "--port", "0", *bad])
        assert result.exit_code == 2 and "error: expected " in result.output, result.output
