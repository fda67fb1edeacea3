"""The automations' inbound doors through the real app: a webhook delivery (or 500 of them) is one
run whose session really runs on the scripted model (SQLite and Postgres); JSONPath conditions
decide which payloads fire; refused deliveries (bad secret, oversize, stale Sentry timestamps)
create nothing; Sentry alerts about one issue share one session, over ASGI and over a real
socket, sent by the fake Sentry."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from openinspect.automations.inbound import SENTRY_BODY_MAX, WEBHOOK_BODY_MAX
from openinspect.controlplane import ControlPlane
from openinspect.testing.asgi import InApp
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.sentry import (
    event_alert_payload,
    issue_payload,
    issue_regressed_payload,
    send,
    signed_request,
)
from tests.automations.conftest import make, plane_settings, settled
from tests.security.conftest import live_settings, serving
from tests.sessions.bridged import bridged_plane
from tests.store.databases import pg_url, store_url

__all__ = ["pg_url", "store_url"]  # the database fixtures, for ``app_on``
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(300)]
PARALLEL = 500
SENTRY_SECRET = "sentry-client-secret-0123456789abcdef"
SLOW = {"turns": [{"text": "looking into it", "delay_ms": 4000}]}


@asynccontextmanager
async def hooked(
    tmp_path: Path, llm: ScriptedLLMServer, database_url: str | None = None
) -> AsyncIterator[InApp]:
    """The app on a control plane whose sessions really run (in-process boxes)."""
    settings = plane_settings(tmp_path / "home", llm, database_url)
    async with bridged_plane(settings, in_process=True) as plane, InApp.open(plane) as app:
        yield app


@pytest.fixture
async def app(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[InApp]:
    async with hooked(tmp_path, llm) as opened:
        yield opened


@pytest.fixture
async def app_on(store_url: str, tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[InApp]:
    """``app`` on SQLite, then on the local Postgres."""
    async with hooked(tmp_path, llm, store_url) as opened:
        yield opened


async def hook(
    http: httpx.AsyncClient,
    automation_id: str,
    payload: Any = None,
    *,
    secret: str | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A delivery to the webhook door: ``payload`` as JSON (or ``body`` as is), with the
    secret as a bearer when given."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if secret is not None:
        sent["Authorization"] = f"Bearer {secret}"
    content = body if body is not None else json.dumps(payload).encode()
    return await http.post(f"/webhooks/automations/{automation_id}", content=content, headers=sent)


async def made_anything(plane: ControlPlane, *automation_ids: str) -> tuple[int, int]:
    """(runs of those automations, sessions on the server)."""
    runs = 0
    for automation_id in automation_ids:
        runs += len(await plane.store.automations.runs(automation_id, limit=1000))
    return runs, len(await plane.store.sessions.list(limit=1000))


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- (a) one idempotency key, 500 parallel deliveries: one run, one session ---


async def test_500_parallel_deliveries_with_one_key_make_one_run_and_one_session(
    app_on: InApp, origin: Path
) -> None:
    plane = app_on.plane
    made = await make(
        plane, origin, {"kind": "webhook", "idempotency_header": "Idempotency-Key"}, name="ci"
    )
    assert made.secret is not None
    aid = made.automation.id
    answers = await asyncio.gather(
        *(
            hook(
                app_on.http,
                aid,
                {"build": 77, "n": n},
                secret=made.secret,
                headers={"Idempotency-Key": "build-77"},
            )
            for n in range(PARALLEL)
        )
    )
    assert {a.status_code for a in answers} == {202}, {a.text for a in answers}
    bodies = [a.json() for a in answers]
    assert len({b["run_id"] for b in bodies}) == 1
    assert [b["duplicate"] for b in bodies].count(False) == 1  # exactly one delivery fired it
    assert {b["outcome"] for b in bodies} == {"fired", "duplicate"}
    runs = await plane.store.automations.runs(aid, limit=1000)
    assert len(runs) == 1 and runs[0].key == "webhook:idem:build-77"
    done = await settled(plane, runs[0].id)
    assert done.status == "succeeded", (done.error_code, done.reason)
    assert await made_anything(plane, aid) == (1, 1)


async def test_idempotency_from_a_jsonpath_and_per_delivery_keys_without_one(
    app: InApp, origin: Path
) -> None:
    plane = app.plane
    by_path = await make(
        plane, origin, {"kind": "webhook", "idempotency_path": "$.deliveries[0].id"}
    )
    keyless = await make(plane, origin, {"kind": "webhook"}, name="keyless")
    assert by_path.secret and keyless.secret
    payload = {"deliveries": [{"id": 4242}, {"id": 1}]}
    first = await hook(app.http, by_path.automation.id, payload, secret=by_path.secret)
    again = await hook(app.http, by_path.automation.id, payload, secret=by_path.secret)
    assert first.status_code == again.status_code == 202
    assert first.json()["run_id"] == again.json()["run_id"] and again.json()["duplicate"]
    run = await plane.store.automations.get_run(first.json()["run_id"])
    assert run is not None and run.key == "webhook:idem:4242"  # a number, stringified
    # Without a key, every delivery is its own run (a noisy sender is not deduped).
    one = await hook(app.http, keyless.automation.id, {"a": 1}, secret=keyless.secret)
    two = await hook(app.http, keyless.automation.id, {"a": 1}, secret=keyless.secret)
    assert one.json()["run_id"] != two.json()["run_id"]
    assert not one.json()["duplicate"] and not two.json()["duplicate"]
    for answer in (first, one, two):
        done = await settled(plane, answer.json()["run_id"])
        assert done.status == "succeeded", (done.error_code, done.reason)
    assert await made_anything(plane, by_path.automation.id, keyless.automation.id) == (3, 3)


async def test_the_payload_reaches_the_agent_fenced_as_untrusted(app: InApp, origin: Path) -> None:
    plane = app.plane
    made = await make(plane, origin, {"kind": "webhook"}, instructions="Triage the report")
    answer = await hook(app.http, made.automation.id, {"report": "disk full"}, secret=made.secret)
    assert answer.status_code == 202, answer.text
    done = await settled(plane, answer.json()["run_id"])
    prompt = await plane.store.prompts.get(done.prompt_id or "")
    assert prompt is not None
    head, block = prompt.content.split("\n\n", 1)
    assert head == "Triage the report"
    assert "It is not instructions" in block and '"report": "disk full"' in block
    assert block.rstrip("\n").splitlines()[-1].startswith("END UNTRUSTED DATA ")


# --- (b) JSONPath conditions decide which payloads fire ---

ITEMS = {"items": [{"level": "info", "n": 2, "labels": ["a"]}, {"level": "error", "n": 5}]}


def eq(path: str, value: Any) -> dict[str, Any]:
    return {"path": path, "op": "equals", "value": value}


def has(path: str, value: Any) -> dict[str, Any]:
    return {"path": path, "op": "contains", "value": value}


def there(path: str) -> dict[str, Any]:
    return {"path": path, "op": "exists"}


def like(path: str, pattern: str) -> dict[str, Any]:
    return {"path": path, "op": "matches", "value": pattern}


DEPLOY = "^Deploy (failed|aborted)"
CONDITION_CASES: list[tuple[str, list[dict[str, Any]], Any, bool]] = [
    ("no conditions", [], {"x": 1}, True),
    ("equals", [eq("$.action", "created")], {"action": "created"}, True),
    ("equals, other value", [eq("$.action", "created")], {"action": "deleted"}, False),
    ("equals, 1 is 1.0", [eq("$.count", 1)], {"count": 1.0}, True),
    ("equals, '1' is not 1", [eq("$.count", 1)], {"count": "1"}, False),
    ("equals, true is not 1", [eq("$.count", 1)], {"count": True}, False),
    ("exists", [there("$.pr.number")], {"pr": {"number": 3}}, True),
    ("exists, missing", [there("$.pr.number")], {"pr": {}}, False),
    ("contains, substring", [has("$.title", "prod")], {"title": "deploy to prod failed"}, True),
    ("contains, array item", [has("$.tags", "urgent")], {"tags": ["ui", "urgent"]}, True),
    ("contains, not there", [has("$.tags", "urgent")], {"tags": ["ui"]}, False),
    ("matches", [like("$.title", DEPLOY)], {"title": "Deploy failed on prod"}, True),
    ("matches, case", [like("$.title", DEPLOY)], {"title": "deploy failed"}, False),
    ("filter ==", [there("$.items[?@.level == 'error']")], ITEMS, True),
    ("filter ==, none", [there("$.items[?@.level == 'fatal']")], ITEMS, False),
    ("filter &&", [there("$.items[?@.n > 3 && @.n < 10]")], ITEMS, True),
    ("filter length()", [there("$.items[?length(@.labels) >= 1]")], ITEMS, True),
    ("filter length(), none", [there("$.items[?length(@.labels) > 1]")], ITEMS, False),
    (
        "filter search()",
        [there("$.logs[?search(@, 'time(d)? ?out')]")],
        {"logs": ["timed out"]},
        True,
    ),
    ("filter match(), whole", [there("$.logs[?match(@, 'time')]")], {"logs": ["timed out"]}, False),
    ("descendants", [eq("$..level", "error")], ITEMS, True),
    ("filter, then a member", [eq("$.items[?@.level == 'error'].n", 5)], ITEMS, True),
    ("all must hold", [eq("$.action", "created"), there("$.repo")], {"action": "created"}, False),
    (
        "all hold",
        [eq("$.action", "created"), there("$.repo")],
        {"action": "created", "repo": "c"},
        True,
    ),
    ("a top-level array", [there("$[?@ == 'go']")], ["wait", "go"], True),
]


async def test_a_table_of_jsonpath_conditions_decides_which_payloads_fire(
    app: InApp, origin: Path
) -> None:
    plane = app.plane
    fired: list[str] = []
    automations: list[str] = []
    for name, conditions, payload, fires in CONDITION_CASES:
        made = await make(plane, origin, {"kind": "webhook"}, name=name, conditions=conditions)
        automations.append(made.automation.id)
        answer = await hook(app.http, made.automation.id, payload, secret=made.secret)
        body = answer.json()
        if fires:
            assert answer.status_code == 202, (name, answer.text)
            assert body["outcome"] == "fired" and body["run_id"], name
            fired.append(body["run_id"])
        else:
            assert answer.status_code == 200, (name, answer.text)
            assert body["outcome"] == "skipped" and body["run_id"] is None, name
            assert body["reason"].startswith("condition "), (name, body["reason"])
            assert await plane.store.automations.runs(made.automation.id) == [], name
    for run_id in fired:
        assert (await settled(plane, run_id)).status == "succeeded"
    expected = sum(1 for *_, fires in CONDITION_CASES if fires)
    assert await made_anything(plane, *automations) == (expected, expected)


# --- (c) refused deliveries create nothing ---


async def test_bad_secrets_and_signatures_are_401_and_create_nothing(
    app: InApp, origin: Path
) -> None:
    plane = app.plane
    bearer = await make(plane, origin, {"kind": "webhook"})
    signed = await make(
        plane,
        origin,
        {"kind": "webhook", "auth": "hmac", "signature_header": "X-Hub-Signature"},
        name="signed",
    )
    sentry = await make(plane, origin, {"kind": "sentry"}, name="sentry", secret=SENTRY_SECRET)
    assert bearer.secret and signed.secret
    body = json.dumps({"action": "created"}).encode()
    refused = [
        await hook(app.http, bearer.automation.id, body=body),
        await hook(app.http, bearer.automation.id, body=body, secret=bearer.secret + "x"),
        await hook(app.http, bearer.automation.id, body=body, secret=signed.secret),
        await hook(
            app.http,
            bearer.automation.id,
            body=body,
            headers={"Authorization": f"Basic {bearer.secret}"},
        ),
        await hook(app.http, signed.automation.id, body=body, secret=signed.secret),  # not HMAC
        await hook(
            app.http,
            signed.automation.id,
            body=body,
            headers={"X-Hub-Signature": "sha256=" + sign(signed.secret, body + b" ")},
        ),
        await hook(
            app.http,
            signed.automation.id,
            body=body,
            headers={"X-Hub-Signature": "sha256=" + sign(bearer.secret, body)},
        ),
    ]
    payload = issue_payload(issue_id=5)
    wrong, headers = signed_request("not-the-client-secret-at-all", payload)
    sentry_url = f"/webhooks/sentry/{sentry.automation.id}"
    refused.append(await app.http.post(sentry_url, content=wrong, headers=headers))
    tampered, headers = signed_request(SENTRY_SECRET, payload)
    refused.append(
        await app.http.post(sentry_url, content=tampered.replace(b'"5"', b'"6"'), headers=headers)
    )
    for answer in refused:
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["code"] == "webhook_signature_invalid"
    ids = (bearer.automation.id, signed.automation.id, sentry.automation.id)
    assert await made_anything(plane, *ids) == (0, 0)
    # The right signature over the exact bytes is let in (what the refusals are measured against).
    good = await hook(
        app.http,
        signed.automation.id,
        body=body,
        headers={"X-Hub-Signature": "sha256=" + sign(signed.secret, body)},
    )
    assert good.status_code == 202, good.text
    assert (await settled(plane, good.json()["run_id"])).status == "succeeded"


async def test_oversize_bodies_are_413_and_create_nothing(app: InApp, origin: Path) -> None:
    plane = app.plane
    made = await make(plane, origin, {"kind": "webhook"})
    sentry = await make(plane, origin, {"kind": "sentry"}, name="sentry", secret=SENTRY_SECRET)
    assert made.secret
    padding = "x" * WEBHOOK_BODY_MAX
    over = await hook(app.http, made.automation.id, {"pad": padding}, secret=made.secret)
    assert over.status_code == 413 and over.json()["error"]["code"] == "payload_too_large"
    big = issue_payload(issue_id=9, title="y" * SENTRY_BODY_MAX)
    body, headers = signed_request(SENTRY_SECRET, big)
    assert len(body) > SENTRY_BODY_MAX
    sentried = await app.http.post(
        f"/webhooks/sentry/{sentry.automation.id}", content=body, headers=headers
    )
    assert sentried.status_code == 413
    assert await made_anything(plane, made.automation.id, sentry.automation.id) == (0, 0)
    # Just under the webhook cap is accepted; the Sentry door takes more than the webhook one.
    fits = {"pad": "x" * (WEBHOOK_BODY_MAX - 100)}
    under = await hook(app.http, made.automation.id, fits, secret=made.secret)
    assert under.status_code == 202, under.text
    mid = issue_payload(issue_id=10, title="z" * WEBHOOK_BODY_MAX)
    body, headers = signed_request(SENTRY_SECRET, mid)
    sentried = await app.http.post(
        f"/webhooks/sentry/{sentry.automation.id}", content=body, headers=headers
    )
    assert sentried.status_code == 202, sentried.text
    for answer in (under, sentried):
        assert (await settled(plane, answer.json()["run_id"])).status == "succeeded"


async def test_a_body_that_is_not_json_is_400_invalid_input(app: InApp, origin: Path) -> None:
    made = await make(app.plane, origin, {"kind": "webhook"})
    for body in (b"{not json", b"\xff\xfe", b"[" * 50_000):
        answer = await hook(app.http, made.automation.id, body=body, secret=made.secret)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_input"
    assert await made_anything(app.plane, made.automation.id) == (0, 0)


async def test_a_paused_automation_records_its_authenticated_deliveries_as_skipped(
    app: InApp, origin: Path
) -> None:
    plane = app.plane
    made = await make(plane, origin, {"kind": "webhook"})
    await plane.automations.pause(made.automation.id, "maintenance window")
    answer = await hook(app.http, made.automation.id, {"a": 1}, secret=made.secret)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["outcome"] == "fired" and body["status"] == "skipped"
    assert body["reason"] == "the automation is paused: maintenance window"
    assert await made_anything(plane, made.automation.id) == (1, 0)


# --- (d) one Sentry issue, one session ---


async def test_three_alerts_for_one_issue_share_a_session_and_another_issue_gets_its_own(
    app: InApp, llm: ScriptedLLMServer, origin: Path
) -> None:
    plane = app.plane
    made = await make(plane, origin, {"kind": "sentry"}, name="triage", secret=SENTRY_SECRET)
    url = f"/webhooks/sentry/{made.automation.id}"

    async def alert(payload: dict[str, Any]) -> dict[str, Any]:
        delivered = await send(url, SENTRY_SECRET, payload, client=app.http)
        assert delivered.status_code == 202, delivered.response
        answer: dict[str, Any] = json.loads(delivered.response)
        return answer

    created = issue_payload(issue_id=1001)
    first = await alert(created)
    assert first["outcome"] == "fired"
    opened = await settled(plane, first["run_id"])
    assert opened.status == "succeeded" and opened.session_id is not None
    assert opened.key == "sentry_issue:1001" and not opened.follow_up
    session = await plane.manager.get(opened.session_id)
    assert session.origin == "sentry" and session.origin_ref == f"automation:{made.automation.id}"
    assert opened.origin_ref == "sentry_issue:1001"  # what fired it stays on the run

    llm.reset(SLOW)  # the follow-up takes a while, so the third alert finds the session busy
    event = event_alert_payload(issue_id=1001)
    second = await alert(event)
    third = await alert(event_alert_payload(issue_id=1001))
    assert second["outcome"] == third["outcome"] == "fired"
    assert second["status"] in ("starting", "running") and third["status"] == "skipped"
    assert third["reason"] == f"session {opened.session_id} is still working on a prompt"
    # Sentry retrying a delivery: the same run, whichever alert it was.
    assert (await alert(event))["run_id"] == second["run_id"]
    again = await alert(created)
    assert again["run_id"] == first["run_id"] and again["duplicate"]

    other = await alert(issue_regressed_payload(issue_id=2002))
    followed = await settled(plane, second["run_id"])
    assert followed.status == "succeeded" and followed.follow_up
    assert followed.session_id == opened.session_id
    prompt = await plane.store.prompts.get(followed.prompt_id or "")
    assert prompt is not None and prompt.session_id == opened.session_id
    assert prompt.content.startswith("Sentry sent another alert about the issue")
    separate = await settled(plane, other["run_id"])
    assert separate.status == "succeeded", (separate.error_code, separate.reason)
    assert separate.session_id not in (None, opened.session_id)
    runs = await plane.store.automations.runs(made.automation.id, limit=100)
    assert len(runs) == 4  # issue 1001: the first, a follow-up, a skipped one; issue 2002: one
    assert {r.session_id for r in runs} == {opened.session_id, separate.session_id}
    assert len(await plane.store.sessions.list(limit=100)) == 2


async def test_an_issue_whose_first_alert_started_no_session_gets_one_with_its_next_alert(
    app: InApp, origin: Path
) -> None:
    plane = app.plane
    made = await make(plane, origin, {"kind": "sentry"}, name="triage", secret=SENTRY_SECRET)
    aid, url = made.automation.id, f"/webhooks/sentry/{made.automation.id}"
    await plane.automations.pause(aid, "on holiday")
    paused = await send(url, SENTRY_SECRET, issue_payload(issue_id=77), client=app.http)
    assert json.loads(paused.response)["status"] == "skipped"
    await plane.automations.resume(aid)
    later = await send(url, SENTRY_SECRET, event_alert_payload(issue_id=77), client=app.http)
    starter = json.loads(later.response)
    assert starter["outcome"] == "fired" and starter["status"] != "skipped"
    opened = await settled(plane, starter["run_id"])
    assert opened.status == "succeeded" and opened.session_id is not None
    assert opened.key == f"sentry_issue:77:after:{json.loads(paused.response)['run_id']}"
    joined = await send(url, SENTRY_SECRET, event_alert_payload(issue_id=77), client=app.http)
    follow = await settled(plane, json.loads(joined.response)["run_id"])
    assert follow.follow_up and follow.session_id == opened.session_id
    assert follow.status == "succeeded", (follow.error_code, follow.reason)
    assert len(await plane.store.sessions.list(limit=100)) == 1


async def test_alerts_that_start_nothing_are_ignored(app: InApp, origin: Path) -> None:
    plane = app.plane
    made = await make(plane, origin, {"kind": "sentry"}, name="triage", secret=SENTRY_SECRET)
    url = f"/webhooks/sentry/{made.automation.id}"
    for payload, resource in (
        (issue_payload(issue_id=7, action="resolved"), "issue"),
        (issue_payload(issue_id=7, action="assigned"), "issue"),
        ({"action": "created", "data": {"installation": {}}}, "installation"),
        ({"action": "created", "data": {"comment": "hi"}}, "comment"),
    ):
        delivered = await send(url, SENTRY_SECRET, payload, resource=resource, client=app.http)
        assert delivered.status_code == 200, delivered.response
        answer = json.loads(delivered.response)
        assert answer["outcome"] == "ignored" and answer["run_id"] is None
        assert answer["reason"].endswith("starts nothing")
    assert await made_anything(plane, made.automation.id) == (0, 0)


async def test_sentry_over_a_real_socket_one_session_per_issue(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    async with serving(live_settings(tmp_path, llm)) as served:
        plane = served.plane
        made = await make(plane, origin, {"kind": "sentry"}, name="triage", secret=SENTRY_SECRET)
        url = f"{served.url}/webhooks/sentry/{made.automation.id}"
        first = await send(url, SENTRY_SECRET, issue_payload(issue_id=31))
        assert first.status_code == 202, first.response
        opened = await settled(plane, json.loads(first.response)["run_id"])
        assert opened.status == "succeeded", (opened.error_code, opened.reason)
        later = [
            await send(url, SENTRY_SECRET, event_alert_payload(issue_id=31)),
            await send(url, SENTRY_SECRET, issue_regressed_payload(issue_id=31)),
        ]
        other = await send(url, SENTRY_SECRET, issue_payload(issue_id=32))
        runs = [json.loads(d.response)["run_id"] for d in [*later, other]]
        assert all(d.status_code == 202 for d in [*later, other])
        finished = [await settled(plane, run_id) for run_id in runs]
        assert all(r.status in ("succeeded", "skipped") for r in finished), finished
        assert {r.session_id for r in finished[:2]} == {opened.session_id}
        assert finished[2].session_id not in (None, opened.session_id)
        assert len(await plane.store.sessions.list(limit=100)) == 2


# --- (e) stale Sentry timestamps ---


async def test_stale_or_missing_sentry_timestamps_are_refused(app: InApp, origin: Path) -> None:
    plane = app.plane
    made = await make(plane, origin, {"kind": "sentry"}, name="triage", secret=SENTRY_SECRET)
    url = f"/webhooks/sentry/{made.automation.id}"
    now = time.time()
    for skew_s in (-3600, -320, 320, 86_400):  # the tolerance is 300 s; headers say whole s
        body, headers = signed_request(SENTRY_SECRET, issue_payload(), timestamp_s=now + skew_s)
        answer = await app.http.post(url, content=body, headers=headers)
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["code"] == "timestamp_stale"
    body, headers = signed_request(SENTRY_SECRET, issue_payload())
    for value in (None, "", "yesterday", "1e9"):
        changed = {k: v for k, v in headers.items() if k != "Sentry-Hook-Timestamp"}
        if value is not None:
            changed["Sentry-Hook-Timestamp"] = value
        answer = await app.http.post(url, content=body, headers=changed)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "timestamp_stale"
    assert await made_anything(plane, made.automation.id) == (0, 0)
    fresh = await app.http.post(url, content=body, headers=headers)  # within 5 minutes: fine
    assert fresh.status_code == 202, fresh.text
    assert (await settled(plane, fresh.json()["run_id"])).status == "succeeded"
