"""The ``pool`` bench part on its own: sessions started on pooled boxes (checked to be pooled)
against a warm box's tool result and a fresh box's first one; the ratios are of the p50s."""

from __future__ import annotations

import pytest

from bench import pool
from bench.suite import PARTS

pytestmark = [pytest.mark.e2e, pytest.mark.bwrap]


def test_the_pool_part_is_registered() -> None:
    assert "pool" in PARTS


@pytest.mark.timeout(300)
async def test_pool_reports_a_pooled_start_against_warm_and_fresh_boxes() -> None:
    result = await pool.run(1)
    for key in (
        "pool_claim_ms",
        "pooled_first_tool_result_ms",
        "warm_tool_result_ms",
        "baseline_fresh_first_tool_result_ms",
    ):
        assert result[key]["n"] == 1 and result[key]["p50"] > 0, key
    pooled = result["pooled_first_tool_result_ms"]["p50"]
    warm = result["warm_tool_result_ms"]["p50"]
    fresh = result["baseline_fresh_first_tool_result_ms"]["p50"]
    # A pooled box skips the clone and the boot: its session's first call beats a fresh box's.
    assert pooled < fresh
    assert result["pool_claim_ms"]["p50"] < pooled
    assert result["cold_to_warm_ratio"] == round(pooled / warm, 2)
    assert result["goal"] == pool.RATIO_GOAL
