"""Prompt latency: POST → first model request, and POST → first ``tool-result``, on a new session
(cold: the sandbox boots for that prompt) and on a follow-up prompt (warm: the sandbox is ready).

Every sample session runs two prompts, each a scripted model turn calling ``bash true`` and then a
final answer: the first prompt gives one cold sample of both measures, the second a warm one.
The baseline is a bare ``bwrap … /usr/bin/true`` started as a subprocess, measured in the same run.

``first_model_request_overhead_ms`` compares the warm prompt with a bare pydantic-ai harness on
the same scripted server, measured in the same run: an ``Agent`` on an OpenAI-compatible model
with the server's tools and instructions (so both send the same request), built once as a
harness would keep it, timed from calling ``run`` to the server receiving the request. The
server's time on top of that (its HTTP request, the store, the queue, preparing the run) is the
overhead; the goal is within :data:`OVERHEAD_GOAL_MS`.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    PROMPT_TIMEOUT_S,
    BenchEnv,
    Event,
    Listener,
    Script,
    bench_env,
    finished,
    ms,
    parse_ts,
    progress,
    ratio,
    summarize_ms,
)

BWRAP_TRUE = (
    "bwrap",
    "--unshare-all",
    "--die-with-parent",
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--symlink",
    "usr/bin",
    "/bin",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--",
    "/usr/bin/true",
)
BWRAP_TIMEOUT_S = 30.0
OVERHEAD_GOAL_MS = 15.0
BARE_SCRIPT: Script = {"turns": [{"text": "Done."}]}

TOOL_SCRIPT: Script = {
    "turns": [{"text": "Checking.", "tool_calls": [{"name": "bash", "args": {"command": "true"}}]}],
    "final_text": "Done.",
}


@dataclass
class LatencySamples:
    """Durations in seconds."""

    model: dict[str, list[float]] = field(default_factory=lambda: {"cold": [], "warm": []})
    tool: dict[str, list[float]] = field(default_factory=lambda: {"cold": [], "warm": []})
    baseline: list[float] = field(default_factory=list)
    bare_model: list[float] = field(default_factory=list)
    """A bare pydantic-ai harness: ``run`` called → the scripted server got the request."""
    sandbox_boot: list[float] = field(default_factory=list)
    """Cold prompts: from ``sandbox-status`` warming to ready (server timestamps)."""
    first_session: dict[str, float] = field(default_factory=dict)
    """The unrecorded first session after the server started (one-time costs), cold prompt."""


def bwrap_true_once() -> float:
    started = time.perf_counter()
    subprocess.run(BWRAP_TRUE, check=True, timeout=BWRAP_TIMEOUT_S, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


async def baseline_bwrap_true(n: int) -> list[float]:
    """``n`` timed runs of a bare bwrap sandbox running ``true`` (after one untimed warm-up)."""
    await asyncio.to_thread(bwrap_true_once)
    return [await asyncio.to_thread(bwrap_true_once) for _ in range(n)]


def _ts(event: Event) -> float:
    return parse_ts(str(event["ts"]))


async def _one_prompt(
    env: BenchEnv, listener: Listener, session_id: str, kind: str
) -> tuple[float, float, list[Event]]:
    """POST a prompt; return (to first model request, to first tool-result) in seconds, and the
    prompt's events."""
    env.llm.reset(TOOL_SCRIPT)
    async with env.client() as client:
        sent = time.time()
        prompt = await client.post_prompt(session_id, content=f"{kind} prompt")
    prompt_id = str(prompt["id"])
    done = await listener.wait_for(finished(prompt_id), PROMPT_TIMEOUT_S)
    if done.event.get("status") != "success":
        raise RuntimeError(f"{kind} prompt did not succeed: {done.event}")
    result = await listener.wait_for(
        lambda e: e.get("type") == "tool-result" and e.get("prompt_id") == prompt_id, 1.0
    )
    if result.event.get("is_error") or result.event.get("exit_code") != 0:
        raise RuntimeError(f"{kind} prompt: `true` failed in the sandbox: {result.event}")
    # The next sample starts once the session is idle again, not while this run winds down.
    await listener.wait_for(
        lambda e: (
            e["type"] == "session-updated"
            and e.get("status") == "idle"
            and int(e["seq"]) > int(done.event["seq"])
        ),
        30.0,
    )
    requests = env.llm.requests
    if not requests:
        raise RuntimeError(f"{kind} prompt: the scripted LLM got no request")
    return requests[0].received_at - sent, result.at - sent, [r.event for r in listener.received]


def _boot_time(events: list[Event]) -> float | None:
    warming = [e for e in events if e["type"] == "sandbox-status" and e["status"] == "warming"]
    ready = [e for e in events if e["type"] == "sandbox-status" and e["status"] == "ready"]
    if warming and ready:
        return _ts(ready[-1]) - _ts(warming[-1])
    return None


async def _session_samples(env: BenchEnv, title: str) -> tuple[float, float, float, float, float]:
    """A new session: a cold prompt, then a warm follow-up. Returns (cold model, cold tool,
    warm model, warm tool, sandbox boot) in seconds."""
    async with env.client() as client:
        created = await client.create_session(repo=str(env.origin), title=title)
        session_id = str(created["session"]["id"])
        listener = await Listener.open(client, session_id, since_seq=0)
    try:
        cold_model, cold_tool, events = await _one_prompt(env, listener, session_id, "cold")
        statuses = [e["status"] for e in events if e["type"] == "sandbox-status"]
        if "warming" not in statuses:
            raise RuntimeError(f"the cold prompt did not boot a sandbox: {statuses}")
        boot = _boot_time(events)
        seen = len(listener.received)
        warm_model, warm_tool, events = await _one_prompt(env, listener, session_id, "warm")
        if any(e["type"] == "sandbox-status" for e in events[seen:]):
            raise RuntimeError("the warm prompt changed the sandbox status (it was not warm)")
    finally:
        await listener.close()
    return cold_model, cold_tool, warm_model, warm_tool, boot if boot is not None else 0.0


async def measure_prompts(env: BenchEnv, samples: LatencySamples, n: int) -> None:
    """One unrecorded session (the server's first prompts pay one-time costs), then ``n``
    sessions, each giving a cold and a warm sample."""
    first = await _session_samples(env, "latency warm-up")
    samples.first_session = {
        "first_model_request_ms": ms(first[0]),
        "first_tool_result_ms": ms(first[1]),
    }
    for i in range(n):
        cold_model, cold_tool, warm_model, warm_tool, boot = await _session_samples(
            env, f"latency {i}"
        )
        samples.model["cold"].append(cold_model)
        samples.tool["cold"].append(cold_tool)
        samples.model["warm"].append(warm_model)
        samples.tool["warm"].append(warm_tool)
        if boot > 0:
            samples.sandbox_boot.append(boot)
        progress(
            f"latency {i + 1}/{n}: cold model {ms(cold_model)} ms, tool {ms(cold_tool)} ms; "
            f"warm model {ms(warm_model)} ms, tool {ms(warm_tool)} ms"
        )


async def bare_harness(env: BenchEnv, n: int) -> list[float]:
    """``n`` timed first requests of a bare pydantic-ai agent on the bench's scripted server
    (after one untimed run, as the server's samples follow an unrecorded session)."""
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    from openinspect.agent.runner import INSTRUCTIONS
    from openinspect.agent.tools import ToolDeps, builtin_tools

    provider = OpenAIProvider(base_url=env.llm.openai_base_url, api_key="bench-not-a-secret")
    agent = Agent(
        OpenAIChatModel("scripted", provider=provider),
        deps_type=ToolDeps,
        tools=builtin_tools(),
        instructions=INSTRUCTIONS.format(repo_dir="/workspace/repo", branch="openinspect/bench"),
    )
    out = []
    for i in range(n + 1):
        env.llm.reset(BARE_SCRIPT)
        sent = time.time()
        await agent.run(f"bare prompt {i}", deps=None)  # type: ignore[arg-type]  # no tool runs
        requests = env.llm.requests
        if not requests:
            raise RuntimeError("the bare harness: the scripted LLM got no request")
        if i:
            out.append(requests[0].received_at - sent)
    return out


def _overhead(samples: LatencySamples) -> dict[str, Any]:
    warm = summarize_ms(samples.model["warm"])
    bare = summarize_ms(samples.bare_model)
    overhead = round(float(warm["p50"]) - float(bare["p50"]), 1)
    return {
        "overhead_ms": overhead,
        "warm_ms": warm,
        "bare_pydantic_ai_ms": bare,
        "overhead_is": "p50 of warm prompts minus p50 of the bare harness",
        "goal_ms": OVERHEAD_GOAL_MS,
        "meets_goal": overhead <= OVERHEAD_GOAL_MS,
    }


def report(samples: LatencySamples) -> dict[str, Any]:
    tool = {kind: summarize_ms(values) for kind, values in samples.tool.items()}
    baseline = summarize_ms(samples.baseline)
    return {
        "first_model_request_overhead_ms": _overhead(samples),
        "first_model_request_ms": {
            kind: summarize_ms(values) for kind, values in samples.model.items()
        },
        "first_tool_result_ms": {
            **tool,
            "baseline_bwrap_true_ms": baseline,
            "ratio_cold_to_baseline": ratio(float(tool["cold"]["p50"]), float(baseline["p50"])),
            "ratio_warm_to_baseline": ratio(float(tool["warm"]["p50"]), float(baseline["p50"])),
        },
        "latency_details": {
            "sandbox_boot_ms": summarize_ms(samples.sandbox_boot) if samples.sandbox_boot else None,
            "first_session_after_start": samples.first_session,
            "ratios_are_of": "p50",
        },
    }


async def run(n: int, baseline_n: int, env: BenchEnv | None = None) -> dict[str, Any]:
    """Both latency measures and the bwrap baseline, on ``env`` or on a server of its own."""
    samples = LatencySamples()
    progress(f"baseline: bwrap true x{baseline_n}")
    samples.baseline = await baseline_bwrap_true(baseline_n)
    if env is not None:
        await measure_prompts(env, samples, n)
        samples.bare_model = await bare_harness(env, n)
    else:
        async with bench_env("latency") as own:
            await measure_prompts(own, samples, n)
            samples.bare_model = await bare_harness(own, n)
    return report(samples)
