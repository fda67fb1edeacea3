"""Creating, editing, listing and deleting automations, with who may see what.

Roles (as for sessions, ``people.roles``): an admin sees and manages every automation and may
make one run as any user; a member sees and manages the automations they created or that run as
them, and makes them run as themselves only. Someone else's automation is reported as not found,
so its id reveals nothing.

Checks made here, before anything is stored: the schedule (``automations.schedule``: five
fields, a known zone, at most once per 15 minutes), the user it runs as, the secret. What a
session start checks (the repo is usable and allowed for the user, the model, the effort) is
checked when a run starts, as the user it runs as; a refusal there fails that run with its code.

A webhook automation gets a generated secret (32 random bytes, URL-safe base64) unless one is
given; a Sentry automation needs the client secret of the Sentry integration. The secret is
returned once, by ``create``; it is stored sealed.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from openinspect.automations import schedule as schedules
from openinspect.automations.runs import AutomationEngine, next_run_at
from openinspect.domain.automations import (
    Automation,
    AutomationRun,
    ConcurrencyPolicy,
    Condition,
    ScheduleTrigger,
    Trigger,
)
from openinspect.domain.ids import new_id
from openinspect.domain.models import User
from openinspect.errors import AutomationNotFound, ForbiddenError, InvalidInput
from openinspect.people.roles import is_admin

SECRET_BYTES = 32
SECRET_MIN_CHARS = 16
SECRET_MAX_CHARS = 256
EDITABLE = frozenset(
    {
        "name",
        "repo",
        "base_branch",
        "model",
        "effort",
        "instructions",
        "trigger",
        "conditions",
        "concurrency",
        "run_as",
    }
)


@dataclass(frozen=True)
class Created:
    automation: Automation
    secret: str | None
    """The webhook secret, in clear this once (None for other triggers and for Sentry, whose
    secret the caller gave)."""


def can_manage(user: User, automation: Automation) -> bool:
    return is_admin(user) or user.id in (automation.created_by, automation.run_as)


async def visible(engine: AutomationEngine, user: User, automation_id: str) -> Automation:
    """The automation, if ``user`` may see it; ``AutomationNotFound`` otherwise (also when it
    exists but is someone else's)."""
    found = await engine.store.automations.get(automation_id)
    if found is None or not can_manage(user, found):
        raise AutomationNotFound(
            f"No automation {automation_id!r}", hint="List yours with GET /api/automations"
        )
    return found


async def list_visible(
    engine: AutomationEngine, user: User, *, limit: int, before: str | None = None
) -> list[Automation]:
    owner = None if is_admin(user) else user.id
    return await engine.store.automations.list(owner_id=owner, limit=limit, before=before)


async def _check_run_as(engine: AutomationEngine, user: User, run_as: str) -> None:
    if run_as != user.id and not is_admin(user):
        raise ForbiddenError(
            "Members make automations that run as themselves only",
            hint="Leave run_as out, or ask an admin",
        )
    if await engine.store.users.get(run_as) is None:
        raise InvalidInput(f"No user {run_as!r} to run as", hint="Give the id of an existing user")


def _check_secret(trigger: Trigger, secret: str | None) -> str | None:
    """The secret to store (generated for a webhook without one); the one to return once."""
    if secret is not None and not SECRET_MIN_CHARS <= len(secret) <= SECRET_MAX_CHARS:
        raise InvalidInput(
            f"A secret is {SECRET_MIN_CHARS} to {SECRET_MAX_CHARS} characters",
            hint="Leave it out for a webhook to get a generated one",
        )
    if trigger.kind == "webhook":
        return secret or secrets.token_urlsafe(SECRET_BYTES)
    if trigger.kind == "sentry":
        if secret is None:
            raise InvalidInput(
                "A Sentry automation needs the client secret of the Sentry integration",
                hint="Copy it from Sentry: Settings → Developer Settings → your integration",
            )
        return secret
    if secret is not None:
        raise InvalidInput(f"A {trigger.kind} automation takes no secret")
    return None


async def create(
    engine: AutomationEngine,
    user: User,
    *,
    name: str,
    repo: str,
    instructions: str,
    trigger: Trigger,
    base_branch: str | None = None,
    model: str | None = None,
    effort: str | None = None,
    conditions: Sequence[Condition] = (),
    concurrency: ConcurrencyPolicy | None = None,
    run_as: str | None = None,
    secret: str | None = None,
) -> Created:
    """Check and store a new automation; see the module docstring."""
    run_as = run_as or user.id
    await _check_run_as(engine, user, run_as)
    now = engine.now()
    if isinstance(trigger, ScheduleTrigger):
        schedules.of(trigger, now=now)
    _check_queries(trigger, conditions)
    stored_secret = _check_secret(trigger, secret)
    automation = Automation(
        id=new_id("aut"),
        name=_clean_name(name),
        repo=repo.strip(),
        base_branch=base_branch,
        model=model,
        effort=effort,
        instructions=instructions,
        trigger=trigger,
        conditions=list(conditions),
        concurrency=concurrency or ("skip" if trigger.kind == "schedule" else "queue"),
        run_as=run_as,
        created_by=user.id,
        created_at=now,
        updated_at=now,
    )
    automation = automation.model_copy(update={"next_run_at": next_run_at(automation, now)})
    await engine.store.automations.create(automation, secret=stored_secret)
    return Created(automation, stored_secret if trigger.kind == "webhook" else None)


async def edit(
    engine: AutomationEngine, user: User, automation_id: str, changes: dict[str, Any]
) -> Automation:
    """Change some of ``EDITABLE``; the trigger's kind stays (make a new automation for
    another kind). A changed schedule fires next at its next slot from now."""
    current = await visible(engine, user, automation_id)
    unknown = set(changes) - EDITABLE
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))}")
    trigger = changes.get("trigger", current.trigger)
    if trigger.kind != current.trigger.kind:
        raise InvalidInput(
            f"An automation's trigger stays a {current.trigger.kind} trigger",
            hint="Create a new automation for another kind of trigger",
        )
    if "run_as" in changes and changes["run_as"] != current.run_as:
        await _check_run_as(engine, user, changes["run_as"] or user.id)
    now = engine.now()
    if isinstance(trigger, ScheduleTrigger):
        schedules.of(trigger, now=now)
    _check_queries(trigger, changes.get("conditions", current.conditions))
    updated = current.model_copy(
        update={
            **changes,
            "name": _clean_name(changes.get("name", current.name)),
            "run_as": changes.get("run_as") or current.run_as,
            "conditions": list(changes.get("conditions", current.conditions)),
        }
    )
    if trigger != current.trigger:
        updated = updated.model_copy(update={"next_run_at": next_run_at(updated, now)})
    Automation.model_validate(updated.model_dump())  # the limits, on the merged record
    saved = await engine.store.automations.update(updated)
    if saved is None:
        raise AutomationNotFound(f"No automation {automation_id!r}")
    return saved


async def delete(engine: AutomationEngine, user: User, automation_id: str) -> None:
    await visible(engine, user, automation_id)
    await engine.store.automations.delete(automation_id)


async def runs(
    engine: AutomationEngine,
    user: User,
    automation_id: str,
    *,
    limit: int,
    before: str | None = None,
) -> list[AutomationRun]:
    await visible(engine, user, automation_id)
    return await engine.store.automations.runs(automation_id, limit=limit, before=before)


def _check_queries(trigger: Trigger, conditions: Sequence[Condition]) -> None:
    """Every JSONPath compiles (RFC 9535) and every pattern is within the caps
    (``automations.conditions``), before anything is stored: a delivery never meets a query
    that cannot run."""
    from openinspect.automations import conditions as checks  # jsonpath and regex: on first use

    queries = [(f"condition {n}", c) for n, c in enumerate(conditions, 1)]
    for where, condition in queries:
        try:
            raw = condition.model_dump() if isinstance(condition, BaseModel) else condition
            checks.Condition.model_validate(raw)
        except ValueError as exc:
            raise InvalidInput(
                f"{where} is not valid: {_reason(exc)}",
                hint="Conditions are RFC 9535 JSONPath queries; see docs/automations.md",
            ) from None
    path = getattr(trigger, "idempotency_path", None)
    if path is not None:
        try:
            checks.compile_path(path)
        except ValueError as exc:
            raise InvalidInput(
                f"idempotency_path is not valid: {_reason(exc)}",
                hint="An RFC 9535 JSONPath query, such as $.event.id",
            ) from None


def _reason(exc: ValueError) -> str:
    """The first error's message (a ValidationError lists each of them)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return str(first.get("msg", exc)).removeprefix("Value error, ")[:300]
    return str(exc)[:300]


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidInput("An automation needs a name", hint="Give it a short, telling name")
    return cleaned
