"""``failover_s`` and ``sessions_per_process`` on their own, with tiny sizes: each runs end to
end and reports its documented keys; the failover meets its goal (the acceptance bound)."""

from __future__ import annotations

import pytest

from bench import failover, sessions_per_process
from tests.conftest import skip_or_fail

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


@pytest.mark.timeout(300)
async def test_failover_reports_the_time_to_the_next_accepted_prompt() -> None:
    result = await failover.run(1)
    if "skipped" in result:
        skip_or_fail(result["skipped"])
    assert result["n"] == 1 and 0 < result["p50"] == result["max"]
    assert result["meets_goal"] and result["max"] <= failover.GOAL_S
    # Taking over waits for the dead owner's lease: far slower than a forward to a live one.
    assert 0 < result["baseline_forwarded_accept_s"] < result["max"]


@pytest.mark.timeout(300)
async def test_sessions_per_process_reports_rss_while_streaming_and_after_eviction() -> None:
    result = await sessions_per_process.run(3, stream_s=4.0)
    assert result["sessions"] == 3
    assert result["live_while_streaming"] == 3 and result["live_after_eviction"] == 0
    rss = result["rss_kb"]
    assert all(
        rss[k] > 0 for k in ("baseline", "streaming", "after_eviction", "after_second_round")
    )
    assert result["per_streaming_session_kb"] == round((rss["streaming"] - rss["baseline"]) / 3, 1)
