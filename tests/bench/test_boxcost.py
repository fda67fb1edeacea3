"""``boxcost`` on its own, small: real idle bwrap boxes measured from ``/proc``, a clone's disk
against the mirror's, and a prompt's first tool result after idle against an awake box's. The
shape and the relations that must hold are checked, not the figures against their goals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import boxcost
from bench.__main__ import parse_args
from bench.suite import PARTS

pytestmark = [pytest.mark.e2e, pytest.mark.bwrap]


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@pytest.mark.timeout(300)
async def test_boxcost_reports_idle_box_memory_clone_disk_and_the_wake() -> None:
    assert "boxcost" in PARTS
    assert parse_args(["--only", "boxcost", "--box-count", "2"]).box_count == 2
    result = json.loads(json.dumps(await boxcost.run(2, prompt_samples=1)))

    one, many = result["one_box"], result["many_boxes"]
    assert (one["boxes"], many["boxes"]) == (1, 2)
    assert result["box_memory_mb"] == many["pss_mb_per_box"]
    for measured in (one, many):
        assert 0 < measured["pss_mb_per_box"] <= measured["rss_mb_per_box"]
        assert set(measured["pss_mb_by_process"]) == {"bwrap", "python3"}
    assert result["goal_mb"] == boxcost.GOAL_MB
    assert _positive(result["warm_exec_ms"])
    assert _positive(result["first_exec_after_idle_unwoken_ms"])
    # The clone borrows the mirror's history: it is its checkout and little more, where a full
    # copy costs the whole history (60 commits of 256 KiB of random bytes: 15 MiB).
    assert 0 < result["checkout_mb"] <= result["box_disk_mb"]
    assert result["box_disk_mb"] < result["checkout_mb"] + 1.0
    assert result["baseline_clone_mb"] > result["mirror_mb"] > 10 * result["box_disk_mb"]

    after = result["after_idle"]
    assert after["goal_ratio"] == boxcost.WAKE_GOAL_RATIO
    for delay in boxcost.MODEL_TURN_MS:
        sample = after[f"model_{delay}ms"]
        for key in ("warm_first_tool_result_ms", "after_idle_first_tool_result_ms"):
            assert sample[key]["n"] == 1 and _positive(sample[key]["p50"])
        assert sample["after_idle_to_warm_ratio"] == round(
            sample["after_idle_first_tool_result_ms"]["p50"]
            / sample["warm_first_tool_result_ms"]["p50"],
            2,
        )
