"""Sentry payloads: which alerts count, their keys (one Sentry issue, one session), and the
tolerant models. Payloads come from the fake Sentry's builders and from hand-written bodies
shaped like Sentry's documentation examples."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from openinspect.automations.sentry import (
    FRAMES_MAX,
    TEXT_MAX,
    SentryKey,
    parse_envelope,
    sentry_key,
)
from openinspect.testing.sentry import (
    event_alert_payload,
    issue_payload,
    issue_regressed_payload,
    metric_alert_payload,
)


def test_an_issue_created_counts_and_is_keyed_by_the_issue() -> None:
    assert sentry_key("issue", issue_payload(issue_id=1001)) == SentryKey(
        kind="issue.created",
        session_key="sentry_issue:1001",
        run_key="sentry_issue:1001:created",
        issue_id="1001",
    )


def test_a_regression_joins_the_issue_and_each_regression_is_its_own_run() -> None:
    first = sentry_key("issue", issue_regressed_payload(issue_id=1001))
    assert first is not None and first.kind == "issue.regression"
    assert first.session_key == "sentry_issue:1001" and first.issue_id == "1001"
    later = sentry_key(
        "issue", issue_regressed_payload(issue_id=1001, last_seen=datetime(2027, 1, 1, tzinfo=UTC))
    )
    assert later is not None and later.session_key == first.session_key
    assert later.run_key != first.run_key


def test_every_alert_about_one_issue_has_one_session_key() -> None:
    keys = [
        sentry_key("issue", issue_payload(issue_id=77)),
        sentry_key("event_alert", event_alert_payload(issue_id=77, event_id="a" * 32)),
        sentry_key("event_alert", event_alert_payload(issue_id=77, event_id="b" * 32)),
        sentry_key("issue", issue_regressed_payload(issue_id=77)),
    ]
    assert all(k is not None for k in keys)
    assert {k.session_key for k in keys if k} == {"sentry_issue:77"}
    assert len({k.run_key for k in keys if k}) == 4
    other = sentry_key("event_alert", event_alert_payload(issue_id=78))
    assert other is not None and other.session_key == "sentry_issue:78"


def test_a_redelivered_event_alert_has_the_same_run_key() -> None:
    body = event_alert_payload(issue_id=5, event_id="c" * 32)
    assert sentry_key("event_alert", body) == sentry_key("event_alert", dict(body))


def test_a_critical_metric_alert_is_keyed_by_rule_and_incident_start() -> None:
    key = sentry_key("metric_alert", metric_alert_payload(rule_id=7))
    assert key is not None
    assert key.kind == "metric_alert.critical" and key.issue_id is None
    assert key.session_key == "sentry_metric:7:2026-12-01T09:30:00.000000Z"
    other_rule = sentry_key("metric_alert", metric_alert_payload(rule_id=8))
    assert other_rule is not None and other_rule.session_key != key.session_key


@pytest.mark.parametrize(
    ("resource", "payload"),
    [
        ("issue", issue_payload(action="resolved", status="resolved", substatus=None)),
        ("issue", issue_payload(action="assigned")),
        ("issue", issue_payload(action="archived", status="ignored", substatus="archived_forever")),
        ("issue", issue_payload(action="unresolved", substatus="escalating")),
        ("issue", issue_payload(action="unresolved", substatus="ongoing")),
        ("metric_alert", metric_alert_payload(action="warning")),
        ("metric_alert", metric_alert_payload(action="resolved")),
        ("installation", {"action": "created", "data": {"installation": {"uuid": "x"}}}),
        ("comment", {"action": "created", "data": {"comment": "hi", "issue_id": 1}}),
        ("error", {"action": "created", "data": {"error": {}}}),
        (None, issue_payload()),
        ("event_alert", issue_payload()),  # the header and the body disagree
        ("issue", event_alert_payload()),
        ("issue", {"action": "created", "data": {"issue": {"title": "no id"}}}),
        ("event_alert", {"action": "triggered", "data": {"event": {"event_id": "e"}}}),
        ("metric_alert", {"action": "critical", "data": {"metric_alert": {"id": "1"}}}),
        ("issue", {"data": {}}),
        ("issue", ["not", "an", "object"]),
        ("issue", None),
    ],
)
def test_alerts_that_do_not_count_have_no_key(resource: str | None, payload: Any) -> None:
    assert sentry_key(resource, payload) is None


def test_the_models_keep_what_they_read_and_tolerate_the_rest() -> None:
    body = event_alert_payload(issue_id=9, event_id="d" * 32)
    body["data"]["event"]["exception"]["values"][0]["stacktrace"]["frames"][1]["lineno"] = "x"
    body["data"]["event"]["surprise"] = {"nested": [1, 2, 3]}
    body["data"]["event"]["tags"].append({"key": "browser", "value": "Chrome"})
    body["data"]["event"]["tags"].append("not a tag")
    envelope = parse_envelope(body)
    event = envelope.data.event
    assert event is not None and event.issue_id == "9" and event.project == "4505"
    assert ("environment", "production") in event.tags and ("browser", "Chrome") in event.tags
    assert len(event.tags) == 4
    assert event.exception is not None
    frames = event.exception.values[0].stacktrace.frames  # type: ignore[union-attr]
    assert [f.function for f in frames][1:3] == ["submit_order", "apply_discount"]
    assert frames[1].lineno is None and frames[2].lineno == 41
    assert envelope.installation is not None and envelope.actor is not None
    assert envelope.actor.type == "application"


def test_long_strings_and_lists_are_cut_short_not_refused() -> None:
    frames = [{"filename": f"f{i}.py", "in_app": True, "lineno": i} for i in range(FRAMES_MAX * 3)]
    body = event_alert_payload(title="T" * 50_000, frames=frames)
    event = parse_envelope(body).data.event
    assert event is not None and event.title is not None
    assert len(event.title) == TEXT_MAX and event.title.endswith("…")
    kept = event.exception.values[0].stacktrace.frames  # type: ignore[union-attr]
    assert len(kept) == FRAMES_MAX and kept[-1].filename == f"f{FRAMES_MAX * 3 - 1}.py"


@pytest.mark.parametrize(
    "data", [None, 5, "text", [1], {"issue": "not an object"}, {"issue": {"id": ["x"]}}]
)
def test_odd_data_parses_as_nothing_known(data: Any) -> None:
    envelope = parse_envelope({"action": "created", "data": data})
    assert envelope.data.issue is None or envelope.data.issue.id is None


def test_a_body_without_an_action_is_not_a_sentry_envelope() -> None:
    for body in ({}, {"action": 5}, [], "x"):
        with pytest.raises(ValueError, match="string 'action'"):
            parse_envelope(body)
