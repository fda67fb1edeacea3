"""Wire schemas of ``/api/automations`` (built from ``domain.automations``; the trigger and
condition types are the domain's own, which are already bounded and strict)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from openinspect.api.schemas import Trimmed
from openinspect.automations.manage import SECRET_MAX_CHARS, SECRET_MIN_CHARS
from openinspect.domain.automations import (
    BRANCH_MAX,
    CONDITIONS_MAX,
    EFFORT_MAX,
    INSTRUCTIONS_MAX,
    MODEL_MAX,
    NAME_MAX,
    REPO_MAX,
    Automation,
    AutomationRun,
    AutomationStatus,
    ConcurrencyPolicy,
    Condition,
    Trigger,
)

USER_ID_MAX = 40
AUTOMATION_BODY_MAX_BYTES = 256 * 1024
"""The largest body under /api/automations: well above the largest valid automation (10,000
characters of instructions, 20 conditions), far below the API's general cap."""
WEBHOOK_PATHS = {"webhook": "/webhooks/automations/{id}", "sentry": "/webhooks/sentry/{id}"}
_NO_NUL = r"^[^\x00]*$"
"""Text a database can store (Postgres refuses NUL in text): said in the schema, so a client
reading the OpenAPI document knows."""

Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX, pattern=_NO_NUL), Trimmed]
Repo = Annotated[str, Field(min_length=1, max_length=REPO_MAX, pattern=_NO_NUL), Trimmed]
Instructions = Annotated[
    str, Field(min_length=1, max_length=INSTRUCTIONS_MAX, pattern=_NO_NUL, description="The task.")
]
Branch = Annotated[str, Field(min_length=1, max_length=BRANCH_MAX, pattern=_NO_NUL)]
Model = Annotated[str, Field(min_length=1, max_length=MODEL_MAX, pattern=_NO_NUL)]
Effort = Annotated[str, Field(min_length=1, max_length=EFFORT_MAX, pattern=_NO_NUL)]
UserId = Annotated[str, Field(min_length=1, max_length=USER_ID_MAX, pattern=_NO_NUL)]


class AutomationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    repo: Repo = Field(description="Registered repo name or id, or a git URL (as for sessions).")
    instructions: Instructions
    trigger: Trigger
    base_branch: Branch | None = Field(None, description="Default: the repo's default branch.")
    model: Model | None = Field(None, description="'provider:model'; default: the server's.")
    effort: Effort | None = None
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=CONDITIONS_MAX,
        description="JSONPath conditions on the payload (webhook triggers); all must hold.",
    )
    concurrency: ConcurrencyPolicy | None = Field(
        None,
        description="While a run is active, a firing waits (queue) or is skipped (skip). "
        "Default: skip for schedules, queue for the others.",
    )
    run_as: UserId | None = Field(
        None, description="The user whose sessions the runs are (admins only; default: you)."
    )
    secret: str | None = Field(
        None,
        min_length=SECRET_MIN_CHARS,
        max_length=SECRET_MAX_CHARS,
        pattern=_NO_NUL,
        description="Sentry: the integration's client secret (required). Webhook: your own "
        "secret instead of a generated one. Never returned.",
    )


_REQUIRED_IF_GIVEN = ("name", "repo", "instructions", "trigger", "conditions", "concurrency")


class AutomationPatch(BaseModel):
    """A change to an automation; fields left out stay as they are. ``base_branch``, ``model``
    and ``effort`` set to null go back to their defaults."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    repo: Repo | None = None
    instructions: Instructions | None = None
    trigger: Trigger | None = Field(None, description="Of the same kind as before.")
    base_branch: Branch | None = None
    model: Model | None = None
    effort: Effort | None = None
    conditions: list[Condition] | None = Field(None, max_length=CONDITIONS_MAX)
    concurrency: ConcurrencyPolicy | None = None
    run_as: UserId | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        nulled = [
            f for f in _REQUIRED_IF_GIVEN if f in self.model_fields_set and getattr(self, f) is None
        ]
        if nulled:
            raise ValueError(f"{', '.join(nulled)} cannot be null; leave a field out to keep it")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, as domain values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class RunOut(BaseModel):
    id: str
    automation_id: str
    trigger: str
    key: str
    payload_digest: str | None
    status: str
    reason: str | None
    session_id: str | None
    prompt_id: str | None
    error_code: str | None
    follow_up: bool
    origin_ref: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    fire_time: datetime | None

    @classmethod
    def of(cls, run: AutomationRun) -> RunOut:
        return cls(**run.model_dump(exclude={"context"}))


class AutomationOut(BaseModel):
    id: str
    name: str
    repo: str
    base_branch: str | None
    model: str | None
    effort: str | None
    instructions: str
    trigger: Trigger
    conditions: list[Condition]
    concurrency: ConcurrencyPolicy
    status: AutomationStatus = Field(
        description="enabled; degraded (its last runs failed, see consecutive_failures); paused"
    )
    paused: bool
    paused_reason: str | None
    consecutive_failures: int
    run_as: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None
    webhook_url: str | None = Field(
        None, description="Where the webhook or Sentry integration sends (those triggers only)."
    )
    last_run: RunOut | None = None

    @classmethod
    def of(
        cls, automation: Automation, base_url: str, last_run: AutomationRun | None = None
    ) -> AutomationOut:
        return cls(
            **automation.model_dump(),
            status=automation.status,
            webhook_url=webhook_url(automation, base_url),
            last_run=RunOut.of(last_run) if last_run is not None else None,
        )


def webhook_url(automation: Automation, base_url: str) -> str | None:
    path = WEBHOOK_PATHS.get(automation.trigger.kind)
    return base_url + path.format(id=automation.id) if path is not None else None


class AutomationCreated(BaseModel):
    automation: AutomationOut
    webhook_url: str | None = Field(None, description="Webhook and Sentry triggers only.")
    secret: str | None = Field(
        None,
        description="A webhook's secret (bearer token or HMAC key), shown this once; store it "
        "now. Null for other triggers, and for Sentry (whose secret you gave).",
    )


class AutomationList(BaseModel):
    automations: list[AutomationOut]
    next_cursor: str | None = Field(None, description="Pass as 'before' for the next page.")


class RunList(BaseModel):
    runs: list[RunOut]
    next_cursor: str | None = Field(None, description="Pass as 'before' for the next page.")


class SchedulePreview(BaseModel):
    cron: str
    tz: str
    next: list[datetime] = Field(description="The next five fire times, in the zone's offset.")
