"""Automation routes: thin — schema in, ``automations.manage`` or the engine, schema out.

Members see and manage the automations they created or that run as them; admins every one.
Someone else's automation answers 404 ``automation_not_found``, like one that does not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from openinspect.api.automation_schemas import (
    AutomationCreate,
    AutomationCreated,
    AutomationList,
    AutomationOut,
    AutomationPatch,
    RunList,
    RunOut,
    SchedulePreview,
    webhook_url,
)
from openinspect.api.deps import CurrentUser, State, public_base_url
from openinspect.api.errors import documented
from openinspect.automations import manage
from openinspect.automations import schedule as schedules
from openinspect.domain.automations import CRON_MAX, TZ_MAX
from openinspect.domain.commands import ID_MAX

PAGE_DEFAULT = 50
PAGE_MAX = 200
router = APIRouter(
    prefix="/api/automations", tags=["automations"], responses=documented(401, 404, 422)
)
AutomationId = Annotated[str, Path(min_length=1, max_length=ID_MAX)]
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX)]
Before = Annotated[
    str | None,
    Query(min_length=1, max_length=ID_MAX, description="The next_cursor of the page before."),
]


@router.get("/preview")
async def preview_schedule(
    user: CurrentUser,
    state: State,
    cron: Annotated[str, Query(min_length=1, max_length=CRON_MAX)],
    tz: Annotated[str, Query(min_length=1, max_length=TZ_MAX)] = "UTC",
) -> SchedulePreview:
    """The next five fire times of ``cron`` in ``tz``, or 422 ``schedule_invalid`` saying why
    it is refused (for the editor, as the user types)."""
    now = state.automations.now()
    schedule = schedules.check(cron, tz, now=now)
    return SchedulePreview(cron=schedule.cron, tz=schedule.tz, next=schedule.upcoming(now))


@router.post("", status_code=status.HTTP_201_CREATED, responses=documented(403))
async def create_automation(
    body: AutomationCreate, user: CurrentUser, state: State, request: Request
) -> AutomationCreated:
    """Create an automation. A webhook's URL and secret are in the answer; the secret is
    shown this once."""
    created = await manage.create(state.automations, user, **dict(body))
    base = public_base_url(request)
    return AutomationCreated(
        automation=AutomationOut.of(created.automation, base),
        webhook_url=webhook_url(created.automation, base),
        secret=created.secret,
    )


@router.get("")
async def list_automations(
    user: CurrentUser,
    state: State,
    request: Request,
    limit: Limit = PAGE_DEFAULT,
    before: Before = None,
) -> AutomationList:
    """Newest first, each with its last run."""
    found = await manage.list_visible(state.automations, user, limit=limit, before=before)
    last = await state.store.automations.last_runs(a.id for a in found)
    base = public_base_url(request)
    return AutomationList(
        automations=[AutomationOut.of(a, base, last.get(a.id)) for a in found],
        next_cursor=found[-1].id if len(found) == limit else None,
    )


@router.get("/{automation_id}")
async def get_automation(
    automation_id: AutomationId, user: CurrentUser, state: State, request: Request
) -> AutomationOut:
    found = await manage.visible(state.automations, user, automation_id)
    last = await state.store.automations.last_runs([found.id])
    return AutomationOut.of(found, public_base_url(request), last.get(found.id))


@router.patch("/{automation_id}", responses=documented(403))
async def edit_automation(
    automation_id: AutomationId,
    body: AutomationPatch,
    user: CurrentUser,
    state: State,
    request: Request,
) -> AutomationOut:
    """Change some fields; the trigger keeps its kind. A changed schedule next fires at its
    next slot from now."""
    edited = await manage.edit(state.automations, user, automation_id, body.changes())
    return AutomationOut.of(edited, public_base_url(request))


@router.delete("/{automation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_automation(
    automation_id: AutomationId, user: CurrentUser, state: State
) -> Response:
    """Delete the automation and its run history (its sessions stay)."""
    await manage.delete(state.automations, user, automation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{automation_id}/pause")
async def pause_automation(
    automation_id: AutomationId, user: CurrentUser, state: State, request: Request
) -> AutomationOut:
    """Stop firing (run now still works)."""
    await manage.visible(state.automations, user, automation_id)
    paused = await state.automations.pause(automation_id, f"paused by {user.name}")
    return AutomationOut.of(paused, public_base_url(request))


@router.post("/{automation_id}/resume")
async def resume_automation(
    automation_id: AutomationId, user: CurrentUser, state: State, request: Request
) -> AutomationOut:
    """Fire again: the failure count resets and a schedule's next fire time is computed from
    now (missed slots are not caught up)."""
    await manage.visible(state.automations, user, automation_id)
    resumed = await state.automations.resume(automation_id)
    return AutomationOut.of(resumed, public_base_url(request))


@router.post(
    "/{automation_id}/run", status_code=status.HTTP_202_ACCEPTED, responses=documented(409)
)
async def run_automation(automation_id: AutomationId, user: CurrentUser, state: State) -> RunOut:
    """Run now, by hand: works while paused and leaves the schedule as it is. 409
    ``automation_busy`` while a run is active and the policy is skip."""
    await manage.visible(state.automations, user, automation_id)
    return RunOut.of(await state.automations.run_now(automation_id))


@router.get("/{automation_id}/runs")
async def list_runs(
    automation_id: AutomationId,
    user: CurrentUser,
    state: State,
    limit: Limit = PAGE_DEFAULT,
    before: Before = None,
) -> RunList:
    """The run history, newest first."""
    runs = await manage.runs(state.automations, user, automation_id, limit=limit, before=before)
    return RunList(
        runs=[RunOut.of(r) for r in runs],
        next_cursor=runs[-1].id if len(runs) == limit else None,
    )
