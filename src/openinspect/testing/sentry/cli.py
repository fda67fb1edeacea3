"""``openinspect testing sentry-send``: one signed Sentry webhook to a URL, from the payload
builders, printing what the receiver answered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from openinspect.testing.sentry import payloads
from openinspect.testing.sentry.send import SentryDelivery, send_sync

Resource = Literal["issue", "event_alert", "metric_alert"]
ACTIONS: dict[str, tuple[str, ...]] = {
    "issue": ("created", "regressed"),
    "event_alert": ("triggered",),
    "metric_alert": ("critical", "warning", "resolved"),
}


def build(
    resource: str,
    *,
    action: str | None = None,
    issue_id: str = "1001",
    title: str | None = None,
    project: str | None = None,
    level: str | None = None,
    rule_id: str = "7",
) -> dict[str, Any]:
    """The body for ``resource`` and ``action`` (its first action by default); ValueError for
    a resource or action the fake does not send."""
    if resource not in ACTIONS:
        raise ValueError(f"expected --resource {' | '.join(ACTIONS)}, got {resource!r}")
    action = action or ACTIONS[resource][0]
    if action not in ACTIONS[resource]:
        raise ValueError(
            f"a {resource} webhook's --action is {' | '.join(ACTIONS[resource])}, got {action!r}"
        )
    given: dict[str, Any] = {"title": title, "level": level, "project": project}
    fields = {k: v for k, v in given.items() if v}
    if resource == "issue":
        make = payloads.issue_regressed_payload if action == "regressed" else payloads.issue_payload
        return make(issue_id=issue_id, **fields)
    if resource == "event_alert":
        fields.pop("project", None)  # an event names its project by numeric id
        return payloads.event_alert_payload(issue_id=issue_id, **fields)
    metric: dict[str, Any] = {"action": action, "rule_id": rule_id}
    if title:
        metric["rule_name"] = title
    if project:
        metric["projects"] = [project]
    return payloads.metric_alert_payload(**metric)


def run(
    *,
    url: str,
    secret: str,
    resource: str,
    echo: Callable[[str], None] = print,
    **fields: Any,
) -> SentryDelivery:
    """Build, sign and send one webhook; echo the answer."""
    delivery = send_sync(url, secret, build(resource, **fields), resource=resource)
    echo(f"{delivery.resource} → {url}: {delivery.status_code}")
    if delivery.response:
        echo(delivery.response)
    return delivery
