"""``events_per_s`` on its own, tiny: every figure is there and positive, every event the run
wrote was stored (the bench checks the feed head), and the goal flag follows the figure."""

from __future__ import annotations

import pytest

from bench import events


@pytest.mark.timeout(300)
async def test_events_per_s_reports_group_commit_per_event_and_the_baseline() -> None:
    result = await events.run(sessions=4, per_session=10, repeats=1)
    assert result["events"] == 40
    sqlite = result["sqlite"]
    for name in ("group_commit", "per_event", "baseline_plain_insert_commit"):
        assert sqlite[name]["events_per_s"] > 0 and sqlite[name]["cpu_ms_per_event"] > 0
    assert sqlite["ratio_group_commit_to_per_event"] > 0
    assert result["meets_goal"] == (
        sqlite["group_commit"]["events_per_s"] >= events.GOAL_EVENTS_PER_S
    )
    postgres = result["postgres"]
    if "skipped" not in postgres:
        assert postgres["group_commit"]["events_per_s"] > 0
        assert postgres["per_event"]["events_per_s"] > 0
