"""The fake Linear's webhooks: people mention, delegate, prompt and stop; the app receives
``AgentSessionEvent`` deliveries signed as Linear signs them, retried, replayable and forgeable
on demand, checked by a receiver that verifies as the product must."""

from __future__ import annotations

import hashlib
import hmac
import time

from openinspect.testing.linear import FakeLinear, sign
from tests.testing.linear.conftest import SECRET
from tests.testing.linear.documents import new_issue
from tests.testing.linear.receiver import Receiver


def test_sign_is_hex_hmac_sha256_of_the_body() -> None:
    body = b'{"type":"AgentSessionEvent"}'
    assert sign("s3cret", body) == hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()


def test_mention_sends_created_with_the_issue_and_comment(
    linear: FakeLinear, receiver: Receiver
) -> None:
    alice = linear.add_user("Alice Liddell", "alice@example.com")
    project = linear.add_project("Web")
    team, issue = new_issue(
        linear,
        title="Fix <login>",
        description="Fails on main",
        labels=["bug", "web"],
        project=project.id,
    )
    sid = linear.mention(issue.id, alice.id, "@openinspect fix it please")
    linear.wait_for_deliveries()
    [delivery] = linear.deliveries_for(sid)
    assert delivery.ok and delivery.action == "created" and delivery.agent_session_id == sid
    [got] = receiver.received
    assert got.valid and got.body == delivery.raw
    assert got.headers["linear-event"] == "AgentSessionEvent"
    assert got.headers["linear-delivery"] == delivery.id
    assert got.headers["content-type"].startswith("application/json")
    body = got.json
    assert body["type"] == "AgentSessionEvent" and body["action"] == "created"
    assert body["organizationId"] == linear.org.id and body["appUserId"] == linear.app_user_id
    assert body["oauthClientId"] == linear.client_id and body["webhookId"] == linear.webhook_id
    assert abs(body["webhookTimestamp"] - time.time() * 1000) < 10_000
    session = body["agentSession"]
    assert session["id"] == sid and session["creatorId"] == alice.id
    assert (
        session["status"] == "pending"
        and session["comment"]["body"] == "@openinspect fix it please"
    )
    assert session["comment"]["userId"] == alice.id
    payload_issue = session["issue"]
    assert (
        payload_issue["identifier"] == issue.identifier and payload_issue["title"] == "Fix <login>"
    )
    assert payload_issue["team"] == {"id": team.id, "key": team.key, "name": team.name}
    assert [lab["name"] for lab in payload_issue["labels"]] == ["bug", "web"]
    assert payload_issue["project"] == {"id": project.id, "name": "Web"}
    context = body["promptContext"]
    assert f'<issue identifier="{issue.identifier}">' in context
    assert "<title>Fix &lt;login&gt;</title>" in context and "<label>web</label>" in context
    assert '<comment author="Alice Liddell">\n@openinspect fix it please\n</comment>' in context
    assert "agentActivity" not in body


def test_delegate_prompt_and_stop(linear: FakeLinear, receiver: Receiver) -> None:
    bob = linear.add_user("Bob", "bob@example.com")
    _, issue = new_issue(linear, description="Details")
    sid = linear.delegate(issue.id, bob.id)
    assert linear.issue(issue.id).delegate_id == linear.app_user_id
    prompt = linear.prompt(sid, bob.id, "also update the docs")
    stop = linear.stop_session(sid, bob.id)
    linear.wait_for_deliveries()
    deliveries = linear.deliveries_for(sid)
    assert [d.action for d in deliveries] == ["created", "prompted", "prompted"]
    created, prompted, stopped = (r.json for r in receiver.received)
    assert created["agentSession"]["comment"] is None
    assert created["promptContext"].startswith(f'<issue identifier="{issue.identifier}">')
    assert "primary-directive-thread" not in created["promptContext"]
    activity = prompted["agentActivity"]
    assert activity["content"] == {"type": "prompt", "body": "also update the docs"}
    assert activity["userId"] == bob.id and activity["agentSessionId"] == sid
    assert "signal" not in activity and "promptContext" not in prompted
    assert stopped["agentActivity"]["signal"] == "stop"
    assert stopped["agentActivity"]["content"]["type"] == "prompt"
    assert {prompt.id, stop.id} == {prompted_d.id for prompted_d in deliveries[1:]}
    session = linear.session(sid)
    assert [(a.type, a.signal) for a in session.activities] == [
        ("prompt", None),
        ("prompt", "stop"),
    ]
    assert all(r.valid for r in receiver.received)


def test_retries_replays_and_timeouts(linear: FakeLinear, receiver: Receiver) -> None:
    _, issue = new_issue(linear)
    receiver.plan.statuses = [500, 503]
    sid = linear.delegate(issue.id, linear.admin_user_id)
    linear.wait_for_deliveries()
    [delivery] = linear.deliveries_for(sid)
    assert [a.result for a in delivery.attempts] == [500, 503, 200] and delivery.ok
    ids = {r.headers["linear-delivery"] for r in receiver.received}
    assert ids == {delivery.id} and len({r.body for r in receiver.received}) == 1
    replay = linear.replay(delivery.id)
    linear.wait_for_deliveries()
    [_, again] = linear.deliveries_for(sid)
    assert again.replay_of == delivery.id and replay.id == delivery.id
    assert receiver.received[-1].body == delivery.raw
    assert receiver.received[-1].headers["linear-signature"] == delivery.headers["Linear-Signature"]
    linear.policy.attempts, linear.policy.timeout_s = 2, 0.2
    receiver.plan.delays_s = [1.0, 1.0]
    linear.delegate(issue.id, linear.admin_user_id)
    slow = linear.wait_for_deliveries()[-1]
    assert [a.result for a in slow.attempts] == ["timeout", "timeout"] and not slow.ok
    linear.webhook(None)
    linear.delegate(issue.id, linear.admin_user_id)
    assert [a.result for a in linear.wait_for_deliveries()[-1].attempts] == ["no_receiver"]


def test_forged_deliveries_are_what_a_receiver_must_refuse(
    linear: FakeLinear, receiver: Receiver
) -> None:
    _, issue = new_issue(linear)
    sid = linear.delegate(issue.id, linear.admin_user_id)
    linear.wait_for_deliveries()
    body = linear.event_body(sid, "created")
    status, _, _ = linear.send_raw(body)
    assert status == 200 and receiver.received[-1].valid
    assert linear.send_raw(body, secret="not-the-secret")[0] == 401
    assert not receiver.received[-1].signature_ok
    old = int((time.time() - 120) * 1000)
    assert linear.send_raw(body, timestamp_ms=old)[0] == 401
    assert receiver.received[-1].signature_ok and not receiver.received[-1].fresh
    assert linear.send_raw(body, signature="")[0] == 401
    assert "linear-signature" not in receiver.received[-1].headers
    raw = b'{"type":"AgentSessionEvent","webhookTimestamp":%d}' % int(time.time() * 1000)
    assert linear.send_raw(raw, delivery_id="fixed-id")[0] == 200
    assert receiver.received[-1].headers["linear-delivery"] == "fixed-id"
    assert receiver.received[-1].headers["linear-signature"] == sign(SECRET, raw)
