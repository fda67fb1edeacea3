"""The warm pool: ``pool_claim_ms`` and ``cold_to_warm_ratio`` for a pooled start.

A registered repo gets a pool of one box (each replica keeps that many; the bench runs one).
Each sample: wait until the pool has its ready box, start a session on the repo and POST a
prompt whose first step is a tool call; the session claims the pooled box, binds it (its work
branch, the git proxy) and runs the call. Then a second prompt in that session, whose box is
warm. Figures:

- ``pool_claim_ms``: the session's ``sandbox-status`` ``warming`` → ``ready`` (the claim: the
  mirror refreshed, the box taken, its row and event written, ``bind``), as the client saw them;
- ``cold_to_warm_ratio``: the pooled start's first tool result (POST → ``tool-result``) ÷ the
  warm box's (goal at most :data:`RATIO_GOAL`);
- the baseline: a session on the same repo by path (no pool), whose first tool result waits for a
  fresh box (clone, ``start.sh``), in the same run;
- ``pooled_to_warm_box_first_ratio``: the pooled start against a session's *first* prompt in a
  box made ready before it (warmed by ``typing``): a first prompt's own costs (its actor, its
  agent) are in both, so this is what the pooled box itself adds.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.common import (
    PROMPT_TIMEOUT_S,
    BenchEnv,
    Listener,
    Script,
    bench_env,
    finished,
    ms,
    progress,
    ratio,
    summarize_ms,
)

RATIO_GOAL = 1.5
POOLED_MESSAGE = "a ready box from the warm pool"
CHECK = "head -1 calc.py && git rev-parse --abbrev-ref HEAD"
SCRIPT: Script = {
    "turns": [{"text": "Checking.", "tool_calls": [{"name": "bash", "args": {"command": CHECK}}]}],
    "final_text": "Done.",
}
POOL_READY_TIMEOUT_S = 120.0
REPO = "calc"


async def _tool_result(env: BenchEnv, listener: Listener, session_id: str, kind: str) -> float:
    """POST a prompt; seconds to its first ``tool-result`` (which must have succeeded)."""
    env.llm.reset(SCRIPT)
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
    if result.event.get("exit_code") != 0 or "def " not in str(result.event.get("output")):
        raise RuntimeError(f"{kind} prompt: the tool call failed: {result.event}")
    return result.at - sent


async def _pool_ready(env: BenchEnv) -> None:
    async with env.client() as client, asyncio.timeout(POOL_READY_TIMEOUT_S):
        while True:  # another process's state: polled over the API
            if (await client.request("GET", f"/api/repos/{REPO}/pool"))["ready"] >= 1:
                return
            await asyncio.sleep(0.05)


async def _session(env: BenchEnv, repo: str, title: str) -> tuple[str, Listener]:
    async with env.client() as client:
        created = await client.create_session(repo=repo, title=title)
        session_id = str(created["session"]["id"])
        return session_id, await Listener.open(client, session_id, since_seq=0)


def _claim_s(listener: Listener) -> float:
    """Seconds from the session's ``warming`` to its ``ready``, which must be a pooled box's."""
    statuses = [r for r in listener.received if r.event.get("type") == "sandbox-status"]
    warming = next(r for r in statuses if r.event.get("status") == "warming")
    ready = next(r for r in statuses if r.event.get("status") == "ready")
    if ready.event.get("message") != POOLED_MESSAGE:
        raise RuntimeError(f"the session did not start on a pooled box: {ready.event}")
    return ready.at - warming.at


async def _pooled_sample(env: BenchEnv, title: str) -> tuple[float, float, float]:
    """(claim, first tool result, warm tool result) seconds, in one pooled session."""
    await _pool_ready(env)
    session_id, listener = await _session(env, REPO, title)
    try:
        first = await _tool_result(env, listener, session_id, "pooled")
        claim = _claim_s(listener)
        warm = await _tool_result(env, listener, session_id, "warm")
    finally:
        await listener.close()
    return claim, first, warm


async def _fresh_sample(env: BenchEnv, title: str) -> float:
    """The first tool result of a session whose box boots fresh (the repo by path: no pool)."""
    session_id, listener = await _session(env, str(env.origin), title)
    try:
        return await _tool_result(env, listener, session_id, "fresh")
    finally:
        await listener.close()


async def _warm_box_first_sample(env: BenchEnv, title: str) -> float:
    """The first tool result of a session whose box was made ready before its first prompt
    (``typing`` warms it; the repo by path: no pool): what a first prompt costs besides the box."""
    session_id, listener = await _session(env, str(env.origin), title)
    try:
        await listener.ws.send(json.dumps({"type": "typing"}))
        await listener.wait_for(
            lambda e: e.get("type") == "sandbox-status" and e.get("status") == "ready",
            PROMPT_TIMEOUT_S,
        )
        return await _tool_result(env, listener, session_id, "warm-box first")
    finally:
        await listener.close()


async def run(samples: int) -> dict[str, Any]:
    """The pool's figures from ``samples`` pooled sessions and as many fresh ones (after one
    unrecorded of each: the server's first boot pays one-time costs)."""
    extra = {"OPENINSPECT_SANDBOX__POOL__REFILL_INTERVAL_S": "0.5"}
    claims: list[float] = []
    pooled: list[float] = []
    warm: list[float] = []
    fresh: list[float] = []
    warm_first: list[float] = []
    async with bench_env("pool", extra) as env:
        async with env.client() as client:
            await client.request("POST", "/api/repos", json={"name": REPO, "url": str(env.origin)})
            await client.request("PUT", f"/api/repos/{REPO}/pool", json={"size": 1})
        await _fresh_sample(env, "pool warm-up (fresh)")
        await _pooled_sample(env, "pool warm-up")
        for i in range(samples):
            claim, first, again = await _pooled_sample(env, f"pooled {i}")
            base = await _fresh_sample(env, f"fresh {i}")
            warm_first.append(await _warm_box_first_sample(env, f"warm box {i}"))
            claims.append(claim)
            pooled.append(first)
            warm.append(again)
            fresh.append(base)
            progress(
                f"pool {i + 1}/{samples}: claim {ms(claim)} ms, pooled first tool result "
                f"{ms(first)} ms, warm {ms(again)} ms, fresh {ms(base)} ms"
            )
    pooled_ms, warm_ms, fresh_ms = summarize_ms(pooled), summarize_ms(warm), summarize_ms(fresh)
    return {
        "pool_claim_ms": summarize_ms(claims),
        "cold_to_warm_ratio": ratio(pooled_ms["p50"], warm_ms["p50"]),
        "goal": RATIO_GOAL,
        "pooled_first_tool_result_ms": pooled_ms,
        "warm_tool_result_ms": warm_ms,
        "baseline_fresh_first_tool_result_ms": fresh_ms,
        "fresh_to_warm_ratio": ratio(fresh_ms["p50"], warm_ms["p50"]),
        "warm_box_first_tool_result_ms": summarize_ms(warm_first),
        "pooled_to_warm_box_first_ratio": ratio(pooled_ms["p50"], summarize_ms(warm_first)["p50"]),
    }
