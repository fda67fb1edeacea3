"""Schedules: five-field cron expressions in a time zone, evaluated by ``cronsim``.

``check(cron, tz)`` refuses what we do not run, with the reason: anything but five fields
(cronsim also reads a six-field form with seconds), an expression cronsim rejects, an unknown
zone, one that never fires, and one that fires more often than once per
:data:`MIN_INTERVAL` — judged by the smallest gap between consecutive firings, in real (UTC)
time, over the next :data:`CHECK_FIRINGS` firings or :data:`CHECK_HORIZON`, whichever ends first.
So ``*/10 * * * *`` is refused, and so is ``0,5 9 * * 1`` (two firings five minutes apart once a
week).

Time zones and DST (zoneinfo; what cronsim does, pinned by ``tests/automations/test_schedule``):

- A time the clocks skip (spring forward) fires once, at the first instant after the gap:
  ``30 2 * * *`` in Europe/Berlin on 2026-03-29 fires at 03:00 CEST.
- A time that happens twice (fall back) fires once, at its first occurrence: ``30 2 * * *`` on
  2026-10-25 fires at 02:30 CEST, not again at 02:30 CET.
- An hourly expression fires every real hour through the change (both 02:00s on fall back).

Fire times are returned timezone-aware in UTC; ``upcoming`` gives them in the schedule's zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from openinspect.domain.automations import SchedulePreset, ScheduleTrigger
from openinspect.errors import ScheduleInvalid

MIN_INTERVAL = timedelta(minutes=15)
CHECK_FIRINGS = 2_000
CHECK_HORIZON = timedelta(days=366 + 1)
CATCH_UP_HORIZON = timedelta(days=400)
"""How far back a catch-up looks for the latest missed slot (a yearly schedule's included)."""
PREVIEW_COUNT = 5
PRESETS: dict[SchedulePreset, str] = {
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * 1",
    "monthly": "0 0 1 * *",
}
_HINT = "Use five fields (minute hour day-of-month month day-of-week), e.g. '0 3 * * *'"


@dataclass(frozen=True)
class Schedule:
    """A checked cron expression in its zone."""

    cron: str
    zone: ZoneInfo

    @property
    def tz(self) -> str:
        return self.zone.key

    def firings(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``after`` (any aware datetime), in UTC, forever."""
        start = after.astimezone(self.zone)
        for fire in CronSim(self.cron, start):
            # cronsim starts at the next whole minute after ``start`` (or at it, when it is one
            # with zero seconds): the strictness is ours.
            if fire > after:
                yield fire.astimezone(UTC)

    def next_after(self, after: datetime) -> datetime:
        return next(self.firings(after))

    def upcoming(self, after: datetime, count: int = PREVIEW_COUNT) -> list[datetime]:
        """The next ``count`` fire times after ``after``, in the schedule's zone."""
        found = []
        for fire in self.firings(after):
            found.append(fire.astimezone(self.zone))
            if len(found) == count:
                break
        return found

    def latest_at_or_before(self, now: datetime, since: datetime) -> datetime | None:
        """The last fire time in ``(since, now]`` (a catch-up fires only that one), looking
        back at most :data:`CATCH_UP_HORIZON`."""
        latest = None
        for fire in self.firings(max(since, now - CATCH_UP_HORIZON)):
            if fire > now:
                break
            latest = fire
        return latest


def zone(tz: str) -> ZoneInfo:
    """The IANA zone ``tz``; ``ScheduleInvalid`` when there is none by that name."""
    try:
        return ZoneInfo(tz)
    # A name of a directory in the zone database ('Europe') is an OSError: never say its path.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleInvalid(
            f"Unknown time zone {tz!r}",
            hint="Use an IANA zone name such as 'UTC', 'Europe/Berlin' or 'America/New_York'",
        ) from None


def check(cron: str, tz: str = "UTC", *, now: datetime | None = None) -> Schedule:
    """A :class:`Schedule`, or ``ScheduleInvalid`` saying why ``cron`` in ``tz`` is refused
    (see the module docstring)."""
    expression = " ".join(cron.split())
    fields = expression.split(" ") if expression else []
    if len(fields) != len(PRESETS["hourly"].split()):
        raise ScheduleInvalid(f"A schedule has five fields; {cron!r} has {len(fields)}", hint=_HINT)
    where = zone(tz)
    start = (now or datetime.now(UTC)).astimezone(where)
    try:
        CronSim(expression, start)
    except CronSimError as exc:
        raise ScheduleInvalid(f"Invalid cron expression {cron!r}: {exc}", hint=_HINT) from None
    except (ValueError, OverflowError, IndexError):  # what cronsim does not wrap itself
        raise ScheduleInvalid(f"Invalid cron expression {cron!r}", hint=_HINT) from None
    schedule = Schedule(expression, where)
    _check_interval(schedule, start)
    return schedule


def of(trigger: ScheduleTrigger, *, now: datetime | None = None) -> Schedule:
    return check(trigger.cron, trigger.tz, now=now)


def _check_interval(schedule: Schedule, start: datetime) -> None:
    previous: datetime | None = None
    end = start + CHECK_HORIZON
    count = 0
    # cronsim refuses dates that never come (``0 0 30 2 *``) when it is built, so this ends.
    for fire in schedule.firings(start):
        if previous is not None and fire - previous < MIN_INTERVAL:
            gap = int((fire - previous).total_seconds() // 60)
            raise ScheduleInvalid(
                f"{schedule.cron!r} fires {gap} minutes apart (at "
                f"{previous.astimezone(schedule.zone):%Y-%m-%d %H:%M} and "
                f"{fire.astimezone(schedule.zone):%H:%M} {schedule.tz}); automations run at "
                f"most once per {MIN_INTERVAL.seconds // 60} minutes",
                hint="Use a coarser schedule, e.g. '*/15 * * * *' or a preset",
            )
        previous, count = fire, count + 1
        if count >= CHECK_FIRINGS or fire > end:
            return
