"""``snapshot_restore_ratio`` on its own: one session through a fresh box, a same-host restore and
a restore from the archive, each checked to have the package setup.sh installed; the ratios are
of the p50s."""

from __future__ import annotations

import pytest

from bench import snapshot

pytestmark = [pytest.mark.e2e, pytest.mark.bwrap]


@pytest.mark.timeout(300)
async def test_snapshot_restore_reports_restored_against_fresh_boxes() -> None:
    result = await snapshot.run(1)
    fresh = result["baseline_fresh_first_tool_result_ms"]["p50"]
    for name in ("from_archive", "same_host"):
        summary = result[f"{name}_first_tool_result_ms"]
        assert summary["n"] == 1
        # A restored box skips the clone and setup.sh's install: it is faster than a fresh one.
        assert 0 < summary["p50"] < fresh
    archive = result["from_archive_first_tool_result_ms"]["p50"]
    assert result["snapshot_restore_ratio"] == round(archive / fresh, 2)
    assert result["goal"] == snapshot.RATIO_GOAL
