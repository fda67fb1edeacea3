"""Sentry internal-integration webhooks: the parts of the payload automations read, and which
alerts count. Pure: no store, no HTTP.

    envelope = parse_envelope(payload)          # ValueError if it is not a Sentry envelope
    key = sentry_key(resource, payload)          # None: an alert automations ignore

Resources and the alerts that count (``Sentry-Hook-Resource`` and the envelope's ``action``):

- ``issue``: ``created``, and ``unresolved`` with ``substatus`` ``regressed`` (a regression);
  resolved, assigned, archived and other unresolved changes are ignored.
- ``event_alert``: ``triggered`` (an issue alert rule fired for an event).
- ``metric_alert``: ``critical``; ``warning`` and ``resolved`` are ignored.
- anything else (``installation``, ``error``, ``comment``…): ignored.

One Sentry issue, one session: :attr:`SentryKey.session_key` is ``sentry_issue:<issue id>`` for
every alert about an issue (created, regressed, or an event alert), so the door finds the session
the first alert started and prompts it instead of starting another. A metric alert is about an
incident, not an issue: its session key is ``sentry_metric:<alert rule id>:<date_started>``.
:attr:`SentryKey.run_key` tells one alert from another (a regression by its ``lastSeen``, an event
alert by its event id), so a redelivery of the same alert makes no second run.

The models keep what a summary needs, ignore every other field, take ids as strings (Sentry sends
some as numbers) and cut long strings and lists short rather than refusing the delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

ID_MAX = 100
SHORT_MAX = 100
TEXT_MAX = 1_000
URL_MAX = 2_048
FRAMES_MAX = 100
"""Frames kept per stack trace: the newest ones (Sentry lists frames oldest first)."""
EXCEPTIONS_MAX = 10
TAGS_MAX = 50

SentryResource = Literal["issue", "event_alert", "metric_alert"]
AlertKind = Literal[
    "issue.created", "issue.regression", "event_alert.triggered", "metric_alert.critical"
]


def _capped(limit: int) -> BeforeValidator:
    """A string (or a number, made one) cut to ``limit`` characters; anything else: None."""

    def cut(value: object) -> str | None:
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int | float):
            value = str(value)
        if not isinstance(value, str):
            return None
        return value if len(value) <= limit else value[: limit - 1] + "…"

    return BeforeValidator(cut)


def _last(limit: int) -> BeforeValidator:
    """A list cut to its last ``limit`` items; anything else: an empty list."""
    return BeforeValidator(lambda v: v[-limit:] if isinstance(v, list) else [])


def _first(limit: int) -> BeforeValidator:
    return BeforeValidator(lambda v: v[:limit] if isinstance(v, list) else [])


def _object(value: object) -> object:
    """A nested model's input: a dict, else None (a sender's odd value is not a refusal)."""
    return value if isinstance(value, dict) else None


Id = Annotated[str | None, _capped(ID_MAX)]
Short = Annotated[str | None, _capped(SHORT_MAX)]
Text = Annotated[str | None, _capped(TEXT_MAX)]
Url = Annotated[str | None, _capped(URL_MAX)]


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _line(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class SentryFrame(_Part):
    filename: Text = None
    abs_path: Text = None
    module: Text = None
    function: Text = None
    lineno: Annotated[int | None, BeforeValidator(_line)] = None
    in_app: Annotated[bool | None, BeforeValidator(_flag)] = None


class SentryStacktrace(_Part):
    frames: Annotated[list[SentryFrame], _last(FRAMES_MAX)] = Field(default_factory=list)


class SentryException(_Part):
    type: Text = None
    value: Text = None
    stacktrace: Annotated[SentryStacktrace | None, BeforeValidator(_object)] = None


class SentryExceptions(_Part):
    values: Annotated[list[SentryException], _last(EXCEPTIONS_MAX)] = Field(default_factory=list)


class SentryProject(_Part):
    id: Id = None
    slug: Short = None
    name: Short = None


class SentryIssue(_Part):
    """``data.issue`` of an ``issue`` webhook."""

    id: Id = None
    short_id: Annotated[str | None, _capped(SHORT_MAX)] = Field(None, alias="shortId")
    title: Text = None
    culprit: Text = None
    level: Short = None
    status: Short = None
    substatus: Short = None
    count: Short = None
    first_seen: Short = Field(None, alias="firstSeen")
    last_seen: Short = Field(None, alias="lastSeen")
    project: Annotated[SentryProject | None, BeforeValidator(_object)] = None
    web_url: Url = None


def _tags(value: object) -> list[tuple[str, str]]:
    """Sentry's ``[[key, value], …]`` or ``[{key, value}, …]``, as pairs of capped strings."""
    pairs: list[tuple[str, str]] = []
    for item in value[:TAGS_MAX] if isinstance(value, list) else []:
        if isinstance(item, list | tuple) and len(item) == 2:
            key, val = item
        elif isinstance(item, dict):
            key, val = item.get("key"), item.get("value")
        else:
            continue
        if isinstance(key, str) and isinstance(val, str | int | float):
            pairs.append((key[:SHORT_MAX], str(val)[:SHORT_MAX]))
    return pairs


class SentryEvent(_Part):
    """``data.event`` of an ``event_alert`` webhook."""

    event_id: Id = None
    issue_id: Id = None
    title: Text = None
    culprit: Text = None
    level: Short = None
    project: Id = None
    """The project's numeric id (events carry no slug)."""
    datetime: Short = None
    web_url: Url = None
    issue_url: Url = None
    exception: Annotated[SentryExceptions | None, BeforeValidator(_object)] = None
    tags: Annotated[list[tuple[str, str]], BeforeValidator(_tags)] = Field(default_factory=list)


class SentryAlertRule(_Part):
    id: Id = None
    name: Text = None
    aggregate: Text = None
    query: Text = None
    projects: Annotated[list[Annotated[str, _capped(SHORT_MAX)]], _first(TAGS_MAX)] = Field(
        default_factory=list
    )


class SentryMetricAlert(_Part):
    """``data.metric_alert`` of a ``metric_alert`` webhook: the incident."""

    id: Id = None
    identifier: Id = None
    title: Text = None
    status: Short = None
    date_started: Short = None
    date_closed: Short = None
    alert_rule: Annotated[SentryAlertRule | None, BeforeValidator(_object)] = None


class SentryData(_Part):
    issue: Annotated[SentryIssue | None, BeforeValidator(_object)] = None
    event: Annotated[SentryEvent | None, BeforeValidator(_object)] = None
    metric_alert: Annotated[SentryMetricAlert | None, BeforeValidator(_object)] = None
    triggered_rule: Text = None
    description_title: Text = None
    description_text: Text = None
    web_url: Url = None


class SentryInstallation(_Part):
    uuid: Id = None


class SentryActor(_Part):
    type: Short = None
    id: Id = None
    name: Short = None


class SentryEnvelope(_Part):
    """``{action, installation: {uuid}, data: {…}, actor: {type, id, name}}``."""

    action: Annotated[str, _capped(SHORT_MAX)]
    installation: Annotated[SentryInstallation | None, BeforeValidator(_object)] = None
    data: Annotated[SentryData, BeforeValidator(lambda v: v if isinstance(v, dict) else {})] = (
        Field(default_factory=SentryData)
    )
    actor: Annotated[SentryActor | None, BeforeValidator(_object)] = None


def parse_envelope(payload: Any) -> SentryEnvelope:
    """The envelope of a webhook body (parsed JSON); ValueError if it is not an object with a
    string ``action``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("action"), str):
        raise ValueError("a Sentry webhook body is a JSON object with a string 'action'")
    try:
        return SentryEnvelope.model_validate(payload)
    except ValidationError as exc:  # pragma: no cover - every field above is tolerant
        raise ValueError(f"not a Sentry webhook body: {exc.error_count()} problems") from exc


@dataclass(frozen=True)
class SentryKey:
    """What one alert that counts is about."""

    kind: AlertKind
    session_key: str
    """One session per value: ``sentry_issue:<issue id>`` or ``sentry_metric:<rule>:<start>``."""
    run_key: str
    """One run per value: this alert, told apart from the issue's other alerts."""
    issue_id: str | None
    """The Sentry issue (None for a metric alert), to find the session it already has."""


def sentry_key(resource: str | None, payload: Any) -> SentryKey | None:
    """The keys of an alert that counts (see the module docstring); None for one automations
    ignore, including a body without the ids it needs."""
    try:
        envelope = parse_envelope(payload)
    except ValueError:
        return None
    data, action = envelope.data, envelope.action
    if resource == "issue" and data.issue is not None and data.issue.id:
        issue = data.issue
        if action == "created":
            key = f"sentry_issue:{issue.id}"
            return SentryKey("issue.created", key, f"{key}:created", issue.id)
        if action == "unresolved" and issue.substatus == "regressed":
            key = f"sentry_issue:{issue.id}"
            run = f"{key}:regressed:{issue.last_seen or ''}"
            return SentryKey("issue.regression", key, run, issue.id)
        return None
    if resource == "event_alert" and action == "triggered" and data.event is not None:
        event = data.event
        if not event.issue_id:
            return None
        key = f"sentry_issue:{event.issue_id}"
        run = f"{key}:event:{event.event_id or ''}"
        return SentryKey("event_alert.triggered", key, run, event.issue_id)
    if resource == "metric_alert" and action == "critical" and data.metric_alert is not None:
        incident = data.metric_alert
        rule = incident.alert_rule.id if incident.alert_rule is not None else None
        if not rule:
            return None
        key = f"sentry_metric:{rule}:{incident.date_started or incident.id or ''}"
        return SentryKey("metric_alert.critical", key, f"{key}:critical", None)
    return None
