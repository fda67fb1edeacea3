"""``cli_start_ms`` on its own (the full smoke test needs bwrap and a browser): each command
and the ``python -c pass`` baseline report their samples, and the ratios are of the p50s."""

from __future__ import annotations

import pytest

from bench import cli_start

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(300)
async def test_cli_start_reports_each_command_against_python_pass() -> None:
    result = await cli_start.run(2)
    for command in ("help", "sessions_list", "baseline_python_pass"):
        summary = result[command]
        assert summary["n"] == 2
        assert 0 < summary["p50"] <= summary["p95"]
    base = result["baseline_python_pass"]["p50"]
    assert result["ratio_help_to_baseline"] == round(result["help"]["p50"] / base, 2)
    assert result["ratio_sessions_list_to_baseline"] == round(
        result["sessions_list"]["p50"] / base, 2
    )
    # The interpreter alone cannot be slower than the interpreter plus the CLI.
    assert result["help"]["p50"] > base and result["sessions_list"]["p50"] > base
