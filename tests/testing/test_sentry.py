"""The fake Sentry: bodies shaped like Sentry's, signed as Sentry signs them (checked with the
server's own verifier), sent over real HTTP from tests and from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from openinspect.automations.sentry import sentry_key
from openinspect.automations.signatures import verify_sentry
from openinspect.errors import SignatureInvalid, TimestampStale
from openinspect.testing.sentry import (
    event_alert_payload,
    issue_payload,
    issue_regressed_payload,
    metric_alert_payload,
    resource_of,
    send,
    signed_request,
)

SECRET = "c1ient-secret-0123456789abcdef"
HEADERS = {
    "content-type",
    "request-id",
    "sentry-hook-resource",
    "sentry-hook-timestamp",
    "sentry-hook-signature",
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A tiny HTTP server that records POSTs and answers ``status``."""

    url: str
    got: list[Received] = field(default_factory=list)
    status: int = 202


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            state.got.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            answer = json.dumps({"ok": True}).encode()
            self.send_response(state.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/sentry/auto1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def verify(got: Received, *, now_s: float | None = None) -> None:
    verify_sentry(
        SECRET.encode(),
        got.body,
        got.headers.get("sentry-hook-signature"),
        got.headers.get("sentry-hook-timestamp"),
        now_s=time.time() if now_s is None else now_s,
    )


@pytest.mark.parametrize(
    ("payload", "resource", "counts"),
    [
        (issue_payload(issue_id=1), "issue", True),
        (issue_regressed_payload(issue_id=1), "issue", True),
        (event_alert_payload(issue_id=1), "event_alert", True),
        (metric_alert_payload(action="critical"), "metric_alert", True),
        (metric_alert_payload(action="resolved"), "metric_alert", False),
    ],
)
async def test_each_kind_is_sent_signed_as_sentry_signs(
    receiver: Receiver, payload: dict[str, object], resource: str, counts: bool
) -> None:
    delivery = await send(receiver.url, SECRET, payload)
    assert delivery.status_code == 202 and delivery.resource == resource
    (got,) = receiver.got
    assert got.path == "/webhooks/sentry/auto1"
    assert set(got.headers) >= HEADERS
    assert got.headers["content-type"] == "application/json"
    assert got.headers["sentry-hook-resource"] == resource
    assert got.headers["sentry-hook-timestamp"].isdigit()  # Unix seconds
    assert abs(int(got.headers["sentry-hook-timestamp"]) - time.time()) < 60
    assert got.body == delivery.body
    verify(got)
    body = json.loads(got.body)
    assert body == payload
    assert set(body) == {"action", "installation", "data", "actor"}
    assert (sentry_key(resource, body) is not None) is counts


async def test_the_signature_covers_the_exact_bytes(receiver: Receiver) -> None:
    await send(receiver.url, SECRET, issue_payload())
    (got,) = receiver.got
    reformatted = json.dumps(json.loads(got.body), separators=(",", ":")).encode()
    assert reformatted != got.body
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify(Received(got.path, got.headers, reformatted))
    with pytest.raises(SignatureInvalid):
        verify_sentry(
            b"another secret",
            got.body,
            got.headers["sentry-hook-signature"],
            got.headers["sentry-hook-timestamp"],
            now_s=time.time(),
        )


async def test_a_chosen_timestamp_is_sent_and_judged_by_the_receivers_clock(
    receiver: Receiver,
) -> None:
    await send(receiver.url, SECRET, issue_payload(), timestamp_s=1_000_000_000)
    (got,) = receiver.got
    assert got.headers["sentry-hook-timestamp"] == "1000000000"
    verify(got, now_s=1_000_000_100)
    with pytest.raises(TimestampStale):
        verify(got)


def test_request_ids_differ_and_the_resource_follows_the_body() -> None:
    _, one = signed_request(SECRET, issue_payload())
    _, two = signed_request(SECRET, issue_payload())
    assert one["Request-ID"] != two["Request-ID"]
    assert resource_of(event_alert_payload()) == "event_alert"
    assert resource_of(metric_alert_payload()) == "metric_alert"
    assert resource_of(issue_payload()) == "issue"
    _, forced = signed_request(SECRET, issue_payload(), resource="comment")
    assert forced["Sentry-Hook-Resource"] == "comment"


def test_the_builders_take_their_parameters() -> None:
    body = issue_payload(issue_id=4242, title="Boom", project="api", level="fatal")
    issue = body["data"]["issue"]
    assert (issue["id"], issue["title"], issue["level"]) == ("4242", "Boom", "fatal")
    assert issue["project"]["slug"] == "api" and issue["web_url"].endswith("/issues/4242/")
    event = event_alert_payload(issue_id=7, event_id="f" * 32, level="warning")["data"]["event"]
    assert event["issue_id"] == "7" and event["event_id"] == "f" * 32
    assert ["level", "warning"] in event["tags"]
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert any(f["in_app"] for f in frames) and not frames[-1]["in_app"]
    metric = metric_alert_payload(rule_id=9, action="resolved")
    assert metric["action"] == "resolved"
    assert metric["data"]["metric_alert"]["alert_rule"]["id"] == "9"
    assert metric["data"]["metric_alert"]["date_closed"] is not None


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openinspect", "testing", "sentry-send", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_command_line_sends_one_signed_webhook(receiver: Receiver) -> None:
    done = run_cli(
        "--url", receiver.url, "--secret", SECRET, "--resource", "issue",
        "--action", "regressed", "--issue-id", "31337", "--title", "Boom", "--level", "fatal",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"issue → {receiver.url}: 202" in done.stdout
    (got,) = receiver.got
    verify(got)
    key = sentry_key(got.headers["sentry-hook-resource"], json.loads(got.body))
    assert key is not None and key.kind == "issue.regression"
    assert key.session_key == "sentry_issue:31337"
    assert json.loads(got.body)["data"]["issue"]["title"] == "Boom"


def test_the_command_line_fails_on_a_refusal_or_a_bad_option(receiver: Receiver) -> None:
    receiver.status = 401
    refused = run_cli("--url", receiver.url, "--secret", SECRET, "--resource", "metric_alert")
    assert refused.returncode == 1 and ": 401" in refused.stdout
    bad = run_cli("--url", receiver.url, "--secret", SECRET, "--resource", "comment")
    assert bad.returncode == 2 and "expected --resource issue | event_alert" in bad.stderr
    assert len(receiver.got) == 1
