"""Webhook bodies shaped like Sentry's (the integration platform's ``issue``, ``event_alert``
and ``metric_alert`` resources), each built from a few parameters with realistic defaults.

Every body is the envelope ``{action, installation: {uuid}, data, actor}``. Web URLs point at
``https://<org>.sentry.example`` (a reserved domain, so nothing follows them anywhere real).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

DEFAULT_ORG = "acme"
DEFAULT_INSTALLATION = "7a485448-a9e2-4c85-8a3c-4f44175783c9"
_EPOCH = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)

Frame = dict[str, Any]
DEFAULT_FRAMES: list[Frame] = [
    # Oldest first, as Sentry lists them; the last frame raised.
    {
        "filename": "lib/python3.12/site-packages/django/core/handlers/base.py",
        "module": "django.core.handlers.base",
        "function": "_get_response",
        "lineno": 197,
        "in_app": False,
    },
    {
        "filename": "app/views/checkout.py",
        "module": "app.views.checkout",
        "function": "submit_order",
        "lineno": 88,
        "in_app": True,
    },
    {
        "filename": "app/billing/totals.py",
        "module": "app.billing.totals",
        "function": "apply_discount",
        "lineno": 41,
        "in_app": True,
    },
    {
        "filename": "lib/python3.12/decimal.py",
        "module": "decimal",
        "function": "__truediv__",
        "lineno": 12,
        "in_app": False,
    },
]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _envelope(action: str, data: dict[str, Any], installation: str) -> dict[str, Any]:
    return {
        "action": action,
        "installation": {"uuid": installation},
        "data": data,
        "actor": {"type": "application", "id": "sentry", "name": "Sentry"},
    }


def issue_payload(
    *,
    issue_id: int | str = 1001,
    title: str = "ZeroDivisionError: division by zero",
    culprit: str = "app.billing.totals in apply_discount",
    project: str = "web-app",
    level: str = "error",
    action: str = "created",
    status: str = "unresolved",
    substatus: str | None = "new",
    count: int = 1,
    first_seen: datetime = _EPOCH,
    last_seen: datetime | None = None,
    org: str = DEFAULT_ORG,
    installation: str = DEFAULT_INSTALLATION,
) -> dict[str, Any]:
    """An ``issue`` webhook (``Sentry-Hook-Resource: issue``), by default ``created``."""
    issue_id = str(issue_id)
    web = f"https://{org}.sentry.example"
    api = "https://sentry.example/api/0"
    issue = {
        "id": issue_id,
        "shortId": f"{project.upper()}-{int(issue_id) % 1000 if issue_id.isdigit() else 1:X}",
        "title": title,
        "culprit": culprit,
        "level": level,
        "status": status,
        "substatus": substatus,
        "statusDetails": {},
        "platform": "python",
        "type": "error",
        "issueCategory": "error",
        "count": str(count),
        "userCount": 1,
        "firstSeen": _iso(first_seen),
        "lastSeen": _iso(last_seen or first_seen),
        "metadata": {"type": title.partition(":")[0], "value": title.partition(": ")[2]},
        "project": {"id": "4505", "name": project, "slug": project, "platform": "python"},
        "web_url": f"{web}/issues/{issue_id}/",
        "url": f"{api}/organizations/{org}/issues/{issue_id}/",
        "project_url": f"{web}/issues/?project=4505",
    }
    return _envelope(action, {"issue": issue}, installation)


def issue_regressed_payload(
    *,
    issue_id: int | str = 1001,
    last_seen: datetime | None = None,
    count: int = 7,
    **fields: Any,
) -> dict[str, Any]:
    """A resolved issue seen again: ``unresolved`` with substatus ``regressed``."""
    seen = last_seen or _EPOCH + timedelta(days=1)
    return issue_payload(
        issue_id=issue_id,
        action="unresolved",
        status="unresolved",
        substatus="regressed",
        count=count,
        last_seen=seen,
        **fields,
    )


def event_alert_payload(
    *,
    issue_id: int | str = 1001,
    event_id: str | None = None,
    title: str = "ZeroDivisionError: division by zero",
    culprit: str = "app.billing.totals in apply_discount",
    project_id: int = 4505,
    level: str = "error",
    rule: str = "Page on new checkout errors",
    frames: list[Frame] | None = None,
    seen: datetime = _EPOCH,
    org: str = DEFAULT_ORG,
    installation: str = DEFAULT_INSTALLATION,
) -> dict[str, Any]:
    """An ``event_alert`` webhook (an issue alert rule fired): ``triggered``, with the event,
    its exception and stack trace (``frames`` oldest first)."""
    issue_id = str(issue_id)
    event_id = event_id or uuid.uuid4().hex
    exc_type, _, exc_value = title.partition(": ")
    web = f"https://{org}.sentry.example"
    api = f"https://sentry.example/api/0/projects/{org}/web-app"
    event = {
        "event_id": event_id,
        "issue_id": issue_id,
        "title": title,
        "culprit": culprit,
        "level": level,
        "project": project_id,
        "platform": "python",
        "datetime": _iso(seen),
        "timestamp": seen.timestamp(),
        "message": "",
        "metadata": {"type": exc_type, "value": exc_value, "filename": "app/billing/totals.py"},
        "exception": {
            "values": [
                {
                    "type": exc_type,
                    "value": exc_value,
                    "mechanism": {"type": "generic", "handled": False},
                    "stacktrace": {"frames": frames if frames is not None else DEFAULT_FRAMES},
                }
            ]
        },
        "tags": [["level", level], ["environment", "production"], ["release", "web@1.42.0"]],
        "contexts": {"runtime": {"name": "CPython", "version": "3.12.7", "type": "runtime"}},
        "url": f"{api}/events/{event_id}/",
        "web_url": f"{web}/issues/{issue_id}/events/{event_id}/",
        "issue_url": f"https://sentry.example/api/0/issues/{issue_id}/",
    }
    data = {
        "event": event,
        "triggered_rule": rule,
        "issue_alert": {"title": rule, "settings": [], "sentry_app_id": 1, "sentry_app_name": ""},
    }
    return _envelope("triggered", data, installation)


def metric_alert_payload(
    *,
    action: Literal["critical", "warning", "resolved"] = "critical",
    rule_id: int | str = 7,
    rule_name: str = "Too many errors",
    incident_id: int | str = 42,
    threshold: int = 1000,
    projects: list[str] | None = None,
    started: datetime = _EPOCH,
    org: str = DEFAULT_ORG,
    installation: str = DEFAULT_INSTALLATION,
) -> dict[str, Any]:
    """A ``metric_alert`` webhook: an incident of an alert rule, ``critical`` by default."""
    title = {"critical": "Critical", "warning": "Warning", "resolved": "Resolved"}[action]
    projects = projects or ["web-app"]
    rule = {
        "id": str(rule_id),
        "name": rule_name,
        "aggregate": "count()",
        "dataset": "events",
        "query": "level:error",
        "time_window": 10,
        "threshold_type": 0,
        "resolve_threshold": None,
        "projects": projects,
        "triggers": [
            {"label": "critical", "alert_threshold": threshold, "threshold_type": 0},
        ],
    }
    incident = {
        "id": str(incident_id),
        "identifier": str(incident_id),
        "organization_id": "5",
        "title": rule_name,
        "status": 2 if action == "resolved" else 1,
        "date_started": _iso(started),
        "date_detected": _iso(started),
        "date_closed": _iso(started + timedelta(minutes=20)) if action == "resolved" else None,
        "alert_rule": rule,
    }
    data = {
        "metric_alert": incident,
        "description_text": f"{threshold} events in the last 10 minutes\nFilter: level:error",
        "description_title": f"{title}: {rule_name}",
        "web_url": f"https://{org}.sentry.example/alerts/rules/details/{rule_id}/",
    }
    return _envelope(action, data, installation)
