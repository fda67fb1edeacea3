"""Automations: sessions started without a person in the loop. Pure data, no I/O.

An :class:`Automation` says what to run (repo, branch, model, effort, instructions), as whom
(``run_as``: its sessions and commits are that user's), and when: one :data:`Trigger`, a
discriminated union on ``kind`` (``schedule``, ``webhook``, ``sentry``, ``github``), plus
optional :class:`Condition` s on the payload (their evaluation lives in
``automations.conditions``). Every firing is an :class:`AutomationRun`, unique per automation by
its ``key`` (a schedule's fire time, a webhook's idempotency key…), so a duplicate firing finds
the run the first one made instead of making another.

Run statuses::

    queued ──► starting ──► running ──► succeeded | failed
       │            └──────────────────► failed   (the session could not start)
       └──► skipped                               (a run was active and the policy is skip,
                                                   or the automation is paused)

Secrets (a webhook's bearer/HMAC secret, a Sentry integration's client secret) are not part of
these records: the store keeps them sealed and hands them only to the code that verifies a
signature.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_MAX = 200
INSTRUCTIONS_MAX = 10_000
REPO_MAX = 2048
BRANCH_MAX = 255
MODEL_MAX = 300
EFFORT_MAX = 16
CRON_MAX = 100
TZ_MAX = 64
HEADER_NAME_MAX = 100
JSONPATH_MAX = 500
FILTER_ITEMS_MAX = 20
FILTER_ITEM_MAX = 255
CONDITIONS_MAX = 20
CONDITION_VALUE_MAX = 1_000
REASON_MAX = 1_000
PAUSED_REASON_MAX = 500
RUN_KEY_MAX = 300
FIX_ATTEMPTS_MAX = 10
DEFAULT_FIX_ATTEMPTS = 3
AUTO_PAUSE_AFTER = 3
"""Failed runs in a row after which an automation pauses itself."""
RUN_ORIGIN_REF_PREFIX = "automation:"
"""A session an automation started has ``origin_ref`` ``automation:<automation id>`` unless the
trigger names something more specific."""

TriggerKind = Literal["schedule", "webhook", "sentry", "github"]
RunTrigger = Literal["schedule", "webhook", "sentry", "github", "manual"]
"""What fired a run: the automation's trigger, or a person (``run now``)."""
RunStatus = Literal["queued", "skipped", "starting", "running", "succeeded", "failed"]
ACTIVE_RUN_STATUSES: tuple[RunStatus, ...] = ("queued", "starting", "running")
FINISHED_RUN_STATUSES: tuple[RunStatus, ...] = ("skipped", "succeeded", "failed")
ConcurrencyPolicy = Literal["queue", "skip"]
"""What a firing does while another run of the automation is active: wait for it, or be
recorded as skipped."""
SchedulePreset = Literal["hourly", "daily", "weekly", "monthly"]
WebhookAuth = Literal["bearer", "hmac"]
GithubEvent = Literal[
    "pull_request.opened",
    "pull_request.synchronize",
    "pull_request.closed",
    "issue_comment",
    "check_failed",
]
ConditionOp = Literal["equals", "contains", "exists", "matches"]
AutomationStatus = Literal["enabled", "degraded", "paused"]

_Name = Annotated[str, Field(min_length=1, max_length=FILTER_ITEM_MAX)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScheduleTrigger(_Frozen):
    """A five-field cron expression in a time zone (IANA name). ``preset`` is how the editor
    made it; the expression is what counts (``automations.schedule`` checks it)."""

    kind: Literal["schedule"] = "schedule"
    cron: str = Field(min_length=1, max_length=CRON_MAX)
    tz: str = Field("UTC", min_length=1, max_length=TZ_MAX)
    preset: SchedulePreset | None = None


class WebhookTrigger(_Frozen):
    """An inbound webhook at ``/webhooks/automations/<id>``: a bearer secret in
    ``Authorization``, or an HMAC-SHA256 of the body in ``signature_header``. The idempotency key
    of a delivery comes from ``idempotency_header`` or the JSONPath ``idempotency_path``."""

    kind: Literal["webhook"] = "webhook"
    auth: WebhookAuth = "bearer"
    signature_header: str = Field(
        "X-Signature-256", min_length=1, max_length=HEADER_NAME_MAX, pattern=r"^[A-Za-z0-9-]+$"
    )
    idempotency_header: str | None = Field(
        None, min_length=1, max_length=HEADER_NAME_MAX, pattern=r"^[A-Za-z0-9-]+$"
    )
    idempotency_path: str | None = Field(None, min_length=1, max_length=JSONPATH_MAX)


class SentryTrigger(_Frozen):
    """A Sentry internal integration's webhooks at ``/webhooks/sentry/<id>``, verified with its
    client secret."""

    kind: Literal["sentry"] = "sentry"


class GithubTrigger(_Frozen):
    """GitHub events on the automation's repo, filtered by branch, label and author (an empty
    filter lets everything through). A failed check on a session's own pull request becomes a
    follow-up prompt in that session, at most ``max_fix_attempts`` times per pull request."""

    kind: Literal["github"] = "github"
    events: list[GithubEvent] = Field(min_length=1, max_length=5)
    branches: list[_Name] = Field(default_factory=list, max_length=FILTER_ITEMS_MAX)
    labels: list[_Name] = Field(default_factory=list, max_length=FILTER_ITEMS_MAX)
    authors: list[_Name] = Field(default_factory=list, max_length=FILTER_ITEMS_MAX)
    max_fix_attempts: int = Field(DEFAULT_FIX_ATTEMPTS, ge=1, le=FIX_ATTEMPTS_MAX)

    @model_validator(mode="after")
    def _distinct_events(self) -> Self:
        if len(set(self.events)) != len(self.events):
            raise ValueError("each event kind may be listed once")
        return self


Trigger = Annotated[
    ScheduleTrigger | WebhookTrigger | SentryTrigger | GithubTrigger,
    Field(discriminator="kind"),
]

ConditionValue = str | int | float | bool | None


class Condition(_Frozen):
    """``path`` (an RFC 9535 JSONPath) compared with ``op``: ``exists`` takes no value,
    ``matches`` a regular expression, ``equals`` and ``contains`` a JSON scalar."""

    path: str = Field(min_length=1, max_length=JSONPATH_MAX)
    op: ConditionOp
    value: ConditionValue = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Self:
        if isinstance(self.value, str) and len(self.value) > CONDITION_VALUE_MAX:
            raise ValueError(f"a condition's value is at most {CONDITION_VALUE_MAX} characters")
        if self.op == "exists" and self.value is not None:
            raise ValueError("'exists' takes no value")
        if self.op == "matches" and not isinstance(self.value, str):
            raise ValueError("'matches' takes a regular expression (a string) as its value")
        if self.op in ("equals", "contains") and self.value is None:
            raise ValueError(f"{self.op!r} needs a value")
        return self


class Automation(_Frozen):
    id: str
    name: str = Field(max_length=NAME_MAX)
    repo: str = Field(max_length=REPO_MAX)
    base_branch: str | None = Field(None, max_length=BRANCH_MAX)
    """None: the repo's default branch."""
    model: str | None = Field(None, max_length=MODEL_MAX)
    """None: the server's default model."""
    effort: str | None = Field(None, max_length=EFFORT_MAX)
    instructions: str = Field(max_length=INSTRUCTIONS_MAX)
    trigger: Trigger
    conditions: list[Condition] = Field(default_factory=list, max_length=CONDITIONS_MAX)
    concurrency: ConcurrencyPolicy = "skip"
    paused: bool = False
    paused_reason: str | None = None
    consecutive_failures: int = 0
    run_as: str
    """The user whose sessions and commits the runs are."""
    created_by: str
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None = None
    """The next fire time (schedule triggers only; None while paused)."""

    @property
    def status(self) -> AutomationStatus:
        """``paused``; ``degraded`` while its last runs failed; else ``enabled``."""
        if self.paused:
            return "paused"
        return "degraded" if self.consecutive_failures else "enabled"


class AutomationRun(_Frozen):
    id: str
    automation_id: str
    trigger: RunTrigger
    key: str = Field(max_length=RUN_KEY_MAX)
    """Unique per automation: a second firing with this key is the same run."""
    payload_digest: str | None = None
    """sha256 (hex) of the payload's canonical JSON, when the firing had one."""
    status: RunStatus
    reason: str | None = None
    """Why it was skipped or failed, or what it waits for."""
    session_id: str | None = None
    prompt_id: str | None = None
    """The prompt whose outcome is the run's (the session's first, or a follow-up)."""
    error_code: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    """When its prompt started running."""
    finished_at: datetime | None = None
    fire_time: datetime | None = None
    """The schedule slot it fired for (schedule runs only)."""
    origin_ref: str | None = None
    """What outside fired it (a Sentry issue, a pull request), given to its session."""
    context: str | None = None
    """Text the trigger built for the agent (e.g. the delimited untrusted payload), appended
    to the instructions; kept so a queued run starts with it later. Not shown by the API."""
    follow_up: bool = False
    """A prompt into an existing session (``AutomationEngine.follow_up``), not a new session."""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_RUN_STATUSES
