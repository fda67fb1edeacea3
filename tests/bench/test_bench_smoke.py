"""Smoke test of the benchmarks: ``run`` with tiny sizes, of the parts no test of their own runs
(latency, fan-out, the web opening; ``test_cli_start``, ``test_server_start``,
``test_replica_benches`` and ``test_events`` run the others on their own): the result has the
documented shape and the keys of those parts only. Nothing is asserted about the timings except
that they are positive."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.__main__ import parse_args
from bench.suite import PARTS, Config, run
from openinspect.sandboxes.bwrap import probe_bwrap
from openinspect.testing.browser import browser_missing, web_missing
from tests.conftest import skip_or_fail

pytestmark = [pytest.mark.e2e, pytest.mark.bwrap, pytest.mark.browser]


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def check_summary(summary: dict[str, Any], n: int) -> None:
    assert summary["n"] == n
    assert positive(summary["p50"]) and positive(summary["p95"])


def check_fanout(run_: dict[str, Any], rate: int, seconds: float) -> None:
    assert run_["offered_per_s"] == rate and run_["events"] == round(rate * seconds)
    assert 0 < run_["delivered_share"] <= 1
    assert positive(run_["delivered_per_s"])
    assert positive(run_["p99_latency_ms"]) and run_["p50_latency_ms"] <= run_["p99_latency_ms"]


@pytest.mark.timeout(480)
async def test_every_part_runs_and_reports_the_documented_keys() -> None:
    reason = probe_bwrap() or browser_missing() or web_missing()
    if reason is not None:
        skip_or_fail(reason)
    config = Config(
        samples=1,
        baseline_samples=2,
        clients=(1, 2),
        rates=(50, 1000),
        fanout_s=0.5,
        web_samples=1,
        cli_samples=2,
        start_samples=1,
        failover_samples=1,
        streaming_sessions=2,
        stream_s=4.0,
        event_sessions=2,
        events_per_session=5,
        share_server=True,
        parts=("latency", "fanout", "web"),
    )
    result = json.loads(json.dumps(await run(config)))  # JSON-serializable as printed

    for kind in ("cold", "warm"):
        check_summary(result["first_model_request_ms"][kind], 1)
        check_summary(result["first_tool_result_ms"][kind], 1)
    overhead = result["first_model_request_overhead_ms"]
    check_summary(overhead["bare_pydantic_ai_ms"], 1)
    assert overhead["overhead_ms"] == round(
        overhead["warm_ms"]["p50"] - overhead["bare_pydantic_ai_ms"]["p50"], 1
    )
    assert overhead["meets_goal"] == (overhead["overhead_ms"] <= overhead["goal_ms"])
    tool = result["first_tool_result_ms"]
    check_summary(tool["baseline_bwrap_true_ms"], 2)
    assert positive(tool["ratio_cold_to_baseline"])
    assert positive(tool["ratio_warm_to_baseline"])

    fan = result["fanout"]
    for n in (1, 2):
        key = f"clients_{n}"
        for rate in (50, 1000):
            check_fanout(fan[key][f"rate_{rate}"], rate, 0.5)
            check_fanout(fan["baseline_websockets"][key][f"rate_{rate}"], rate, 0.5)
            assert positive(fan["ratio_delivered_to_baseline"][key][f"rate_{rate}"])
        best = max(fan[key][f"rate_{rate}"]["delivered_per_s"] for rate in (50, 1000))
        base = max(
            fan["baseline_websockets"][key][f"rate_{r}"]["delivered_per_s"] for r in (50, 1000)
        )
        assert fan["ratio"][key] == round(best / base, 2)
    other = fan["other_compression"]
    assert other["compression"] is not fan["compression"]
    check_fanout(other["clients_2"]["rate_1000"], 1000, 0.5)
    assert isinstance(fan["meets_goal_ratio"], bool)

    web = result["web_open_5000_events_ms"]
    assert web["events"] == 5000
    for measure in ("first_paint", "interactive", "older_page"):
        check_summary(web[measure], 1)
    for measure in ("first_paint", "interactive"):
        check_summary(web["baseline_15_events"][measure], 1)
    assert positive(web["ratio_first_paint_to_baseline"])
    assert positive(web["ratio_interactive_to_baseline"])

    for skipped in (
        "cli_start_ms",
        "server_start_ms",
        "failover_s",
        "sessions_per_process",
        "events_per_s",
    ):
        assert skipped not in result
    assert result["config"]["parts"] == ["latency", "fanout", "web"]
    assert positive(result["machine"]["cpus"])
    assert isinstance(result["machine"]["python"], str)


def test_command_line_options() -> None:
    argv = ["--samples", "3", "--clients", "1,5", "--rates", "10,20", "--web-samples", "2"]
    argv += ["--cli-samples", "4", "--start-samples", "2", "--event-sessions", "7"]
    argv += ["--only", "web,latency"]
    config = parse_args(argv)
    assert config == Config(
        samples=3,
        clients=(1, 5),
        rates=(10, 20),
        web_samples=2,
        cli_samples=4,
        start_samples=2,
        event_sessions=7,
        parts=("latency", "web"),
    )
    with pytest.raises(SystemExit):
        parse_args(["--clients", "0"])
    with pytest.raises(SystemExit):
        parse_args(["--only", "latency,nothing"])
    assert parse_args([]).parts == PARTS
