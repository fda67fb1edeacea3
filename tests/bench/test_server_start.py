"""``server_start_ms`` on its own: both servers are started and polled until they answer, and
the ratio is of the p50s."""

from __future__ import annotations

import pytest

from bench import server_start

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(300)
async def test_server_start_reports_serve_against_a_bare_uvicorn_server() -> None:
    result = await server_start.run(1)
    for name in ("serve", "baseline_bare_uvicorn"):
        summary = result[name]
        assert summary["n"] == 1
        assert 0 < summary["p50"] <= summary["p95"]
    base = result["baseline_bare_uvicorn"]["p50"]
    assert result["ratio_serve_to_baseline"] == round(result["serve"]["p50"] / base, 2)
    assert result["meets_goal"] == (result["serve"]["p50"] <= server_start.GOAL_MS)
    # The whole server cannot start faster than uvicorn alone.
    assert result["serve"]["p50"] > base
