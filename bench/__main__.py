"""``python -m bench``: run the benchmarks, print one JSON object on stdout (progress on stderr)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bench.suite import PARTS, TOTAL_TIMEOUT_S, Config, run


def _counts(text: str) -> tuple[int, ...]:
    counts = tuple(int(part) for part in text.split(",") if part.strip())
    if not counts or any(n < 1 for n in counts):
        raise argparse.ArgumentTypeError("expected positive integers, e.g. 1,10,100")
    return counts


def _parts(text: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in parts if part not in PARTS]
    if not parts or unknown:
        raise argparse.ArgumentTypeError(f"expected some of: {', '.join(PARTS)}")
    return tuple(part for part in PARTS if part in parts)  # in the order they run


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("expected a positive integer")
    return value


def parse_args(argv: list[str]) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    defaults = Config()
    parser.add_argument(
        "--samples",
        type=_positive,
        default=defaults.samples,
        help="latency sessions (one cold and one warm sample each)",
    )
    parser.add_argument(
        "--baseline-samples",
        type=_positive,
        default=defaults.baseline_samples,
        help="runs of the bare bwrap baseline",
    )
    parser.add_argument(
        "--rates",
        type=_counts,
        default=defaults.rates,
        help="fan-out offered event rates per second, comma-separated",
    )
    parser.add_argument(
        "--fanout-seconds",
        type=float,
        default=defaults.fanout_s,
        help="seconds of events offered at each fan-out rate",
    )
    parser.add_argument(
        "--clients",
        type=_counts,
        default=defaults.clients,
        help="fan-out client counts, comma-separated",
    )
    parser.add_argument(
        "--web-samples",
        type=_positive,
        default=defaults.web_samples,
        help="openings of the 5,000-event session in headless Chromium",
    )
    parser.add_argument(
        "--cli-samples",
        type=_positive,
        default=defaults.cli_samples,
        help="runs of each CLI command (and of python -c pass) for cli_start_ms",
    )
    parser.add_argument(
        "--start-samples",
        type=_positive,
        default=defaults.start_samples,
        help="starts of the server (and of a bare uvicorn server) for server_start_ms",
    )
    parser.add_argument(
        "--failover-samples",
        type=_positive,
        default=defaults.failover_samples,
        help="owner kills for failover_s",
    )
    parser.add_argument(
        "--streaming-sessions",
        type=_positive,
        default=defaults.streaming_sessions,
        help="sessions streaming at once for sessions_per_process",
    )
    parser.add_argument(
        "--event-sessions",
        type=_positive,
        default=defaults.event_sessions,
        help="concurrent writers for events_per_s",
    )
    parser.add_argument(
        "--events-per-session",
        type=_positive,
        default=defaults.events_per_session,
        help="durable events each writer appends for events_per_s",
    )
    parser.add_argument(
        "--snapshot-samples",
        type=_positive,
        default=defaults.snapshot_samples,
        help="sessions for snapshot_restore_ratio (a fresh and a restored sample each)",
    )
    parser.add_argument(
        "--image-samples",
        type=_positive,
        default=defaults.image_samples,
        help="sessions started from a repo image for repo_image_cold_start_ms (and as many "
        "fresh ones and git clone --local runs)",
    )
    parser.add_argument(
        "--pool-samples",
        type=_positive,
        default=defaults.pool_samples,
        help="pooled sessions for pool_claim_ms and cold_to_warm_ratio (and as many fresh)",
    )
    parser.add_argument(
        "--box-count",
        type=_positive,
        default=defaults.box_count,
        help="idle boxes at once for box_memory_mb",
    )
    parser.add_argument(
        "--box-prompt-samples",
        type=_positive,
        default=defaults.box_prompt_samples,
        help="prompts after idle (and awake) for the boxcost part's first tool call",
    )
    parser.add_argument(
        "--timeout", type=float, default=TOTAL_TIMEOUT_S, help="hard time limit, seconds"
    )
    parser.add_argument(
        "--only",
        type=_parts,
        default=defaults.parts,
        help=f"the parts to run, comma-separated, of: {', '.join(PARTS)} (default: all)",
    )
    args = parser.parse_args(argv)
    return Config(
        samples=args.samples,
        baseline_samples=args.baseline_samples,
        rates=args.rates,
        fanout_s=args.fanout_seconds,
        clients=args.clients,
        web_samples=args.web_samples,
        cli_samples=args.cli_samples,
        start_samples=args.start_samples,
        failover_samples=args.failover_samples,
        streaming_sessions=args.streaming_sessions,
        event_sessions=args.event_sessions,
        events_per_session=args.events_per_session,
        snapshot_samples=args.snapshot_samples,
        image_samples=args.image_samples,
        pool_samples=args.pool_samples,
        box_count=args.box_count,
        box_prompt_samples=args.box_prompt_samples,
        timeout_s=args.timeout,
        parts=args.only,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv)
    result = asyncio.run(run(config))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
