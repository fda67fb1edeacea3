"""Schedules: what cronsim does in a zone across DST (pinned here), what is refused and why, and
the catch-up slot after downtime."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from openinspect.automations.schedule import PRESETS, check
from openinspect.errors import ScheduleInvalid

BERLIN = ZoneInfo("Europe/Berlin")


def at(*parts: int, tz: ZoneInfo = BERLIN, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=tz, fold=fold)  # type: ignore[misc]


def test_spring_forward_fires_once_at_the_end_of_the_gap() -> None:
    schedule = check("30 2 * * *", "Europe/Berlin")
    fires = schedule.upcoming(at(2026, 3, 27, 12, 0), 3)
    assert fires == [at(2026, 3, 28, 2, 30), at(2026, 3, 29, 3, 0), at(2026, 3, 30, 2, 30)]
    assert [f.utcoffset() for f in fires] == [
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=2),
    ]
    # In real time: 02:30 CET is 01:30 UTC; 03:00 CEST 01:00 UTC; 02:30 CEST 00:30 UTC.
    utc = [f.astimezone(UTC).strftime("%m-%d %H:%M") for f in fires]
    assert utc == ["03-28 01:30", "03-29 01:00", "03-30 00:30"]


def test_fall_back_fires_once_at_the_first_occurrence() -> None:
    schedule = check("30 2 * * *", "Europe/Berlin")
    fires = schedule.upcoming(at(2026, 10, 24, 12, 0), 2)
    assert [f.astimezone(UTC) for f in fires] == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST; 02:30 CET (01:30 UTC) is not
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
    ]


def test_hourly_fires_every_real_hour_through_fall_back() -> None:
    schedule = check("0 * * * *", "Europe/Berlin")
    fires = schedule.upcoming(at(2026, 10, 25, 0, 30), 4)
    gaps = {b.astimezone(UTC) - a.astimezone(UTC) for a, b in itertools.pairwise(fires)}
    assert gaps == {timedelta(hours=1)}
    assert [f.utcoffset() for f in fires].count(timedelta(hours=1)) == 2  # both 02:00s


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("*/10 * * * *", "10 minutes apart"),
        ("* * * * *", "1 minutes apart"),
        ("0,5 9 * * 1", "5 minutes apart"),
        ("5,55 0,23 * * *", "10 minutes apart"),  # 23:55, then 00:05 the next day
        ("0 0 0 * * *", "five fields"),
        ("0 0 * *", "five fields"),
        ("", "five fields"),
        ("61 * * * *", "Invalid cron"),
        ("0 0 30 2 *", "Invalid cron"),
        ("@hourly", "five fields"),
    ],
)
def test_refused_expressions_say_why(cron: str, why: str) -> None:
    with pytest.raises(ScheduleInvalid) as refused:
        check(cron, "UTC", now=datetime(2026, 12, 2, tzinfo=UTC))
    assert why in refused.value.message
    assert refused.value.code == "schedule_invalid"


def test_an_unknown_zone_is_refused() -> None:
    for tz in ("Mars/Olympus", "../../etc/passwd", "", "Europe", "/etc/localtime"):
        with pytest.raises(ScheduleInvalid, match="time zone") as refused:
            check("0 3 * * *", tz)
        assert "zoneinfo" not in str(refused.value)  # no server path


@pytest.mark.parametrize("cron", [*PRESETS.values(), "*/15 * * * *", "0 9 * * 1-5"])
def test_presets_and_fifteen_minutes_are_accepted(cron: str) -> None:
    assert check(cron, "America/New_York").tz == "America/New_York"


def test_the_catch_up_slot_is_the_latest_missed_one() -> None:
    schedule = check("0 * * * *", "UTC")
    since = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # last fired at 09:00
    now = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    assert schedule.latest_at_or_before(now, since) == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert schedule.latest_at_or_before(since + timedelta(minutes=30), since) is None
    assert schedule.next_after(now) == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
