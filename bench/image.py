"""``repo_image_cold_start_ms``: a new session's first tool result in a box started from its
repo's image, for a generated repo of :data:`REPO_FILES` files, against ``git clone --local``
of the same repo (``git_clone_local_ms``), measured in the same run.

The repo is the sample one with :data:`REPO_FILES` small files added in one commit (in
directories of 100). It is registered, its image turned on, and the server's builder makes the
image (its check runs every half second here); a commit is then pushed, so every image start
also fetches and fast-forwards, as a real one after a push does. Each sample is a new session
whose first prompt runs one command, timed from the session's create (which starts its box):
→ the prompt's first ``tool-result`` (the headline), and → the box's ``ready`` status. For
scale, the same first tool result of a session whose box clones the repo fresh (an
unregistered path, so no image) is measured too.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
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
from openinspect.testing.repos import git_output

REPO_FILES = 10_000
FILES_PER_DIR = 100
REPO_NAME = "bench/images"
CHECK = "ls | wc -l && git log -1 --format=%s"
SCRIPT: Script = {
    "turns": [{"text": "Checking.", "tool_calls": [{"name": "bash", "args": {"command": CHECK}}]}],
    "final_text": "Done.",
}
BUILD_TIMEOUT_S = 300.0
PUSHED = "a commit after the image"


def _commit(work: Path, message: str) -> None:
    git_output("add", ".", cwd=work)
    identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    git_output(*identity, "commit", "--quiet", "-m", message, cwd=work)
    git_output("push", "--quiet", "origin", "main", cwd=work)


def grow_repo(origin: Path, scratch: Path, files: int) -> Path:
    """Commit ``files`` small files to ``origin``'s main; returns the working clone."""
    work = scratch / "image-work"
    git_output("clone", "--quiet", str(origin), str(work), cwd=scratch)
    for n in range(files):
        folder = work / "generated" / f"d{n // FILES_PER_DIR:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{n:05d}.txt").write_text(f"file {n}\n")
    _commit(work, f"{files} generated files")
    return work


def clone_local_s(origin: Path, scratch: Path, samples: int) -> list[float]:
    """Seconds of ``git clone --local`` of ``origin`` (checkout included), ``samples`` times."""
    took = []
    for i in range(samples):
        target = scratch / f"clone-{i}"
        started = time.perf_counter()
        subprocess.run(
            ["git", "clone", "--quiet", "--local", str(origin), str(target)],
            check=True,
            capture_output=True,
        )
        took.append(time.perf_counter() - started)
        shutil.rmtree(target)
    return took


async def _wait_for_image(env: BenchEnv) -> dict[str, Any]:
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    async with env.client() as client:
        while time.monotonic() < deadline:
            shown = await client.request("GET", f"/api/repos/{REPO_NAME}/image")
            if shown["current"] is not None:
                return dict(shown["current"])
            listed = await client.request("GET", f"/api/repos/{REPO_NAME}/image/builds")
            failed = [b for b in listed["builds"] if b["status"] == "failed"]
            if failed:
                raise RuntimeError(f"the image build failed: {failed[0]['error']}")
            await asyncio.sleep(0.5)
    raise RuntimeError("the repo's image was not built in time")


async def _first_tool_result(env: BenchEnv, repo: str, title: str) -> tuple[float, float, str]:
    """A new session on ``repo``: (seconds to the first tool result, to the box's ready, the
    ready status's message)."""
    env.llm.reset(SCRIPT)
    async with env.client() as client:
        sent = time.time()
        created = await client.create_session(repo=repo, title=title)
        session_id = str(created["session"]["id"])
        listener = await Listener.open(client, session_id, since_seq=0)
        try:
            prompt = await client.post_prompt(session_id, content="what is there?")
            prompt_id = str(prompt["id"])
            done = await listener.wait_for(finished(prompt_id), PROMPT_TIMEOUT_S)
            if done.event.get("status") != "success":
                raise RuntimeError(f"the prompt did not succeed: {done.event}")
            result = await listener.wait_for(
                lambda e: e.get("type") == "tool-result" and e.get("prompt_id") == prompt_id, 1.0
            )
            if PUSHED not in str(result.event.get("output")):
                raise RuntimeError(f"the box is not at the newest commit: {result.event}")
            ready = await listener.wait_for(
                lambda e: e.get("type") == "sandbox-status" and e.get("status") == "ready", 1.0
            )
        finally:
            await listener.close()
    return result.at - sent, ready.at - sent, str(ready.event.get("message") or "")


async def _image_sample(env: BenchEnv, title: str) -> tuple[float, float]:
    took, ready, message = await _first_tool_result(env, REPO_NAME, title)
    if not message.startswith("started from repo image"):
        raise RuntimeError(f"the box did not start from the image: {message!r}")
    return took, ready


async def _fresh_sample(env: BenchEnv, title: str) -> float:
    took, _, message = await _first_tool_result(env, str(env.origin), title)
    if message.startswith("started from repo image"):
        raise RuntimeError("the fresh session's box started from the image")
    return took


async def run(samples: int, *, files: int = REPO_FILES) -> dict[str, Any]:
    """The ``repo_image_cold_start_ms`` figures, from ``samples`` rounds (after one unrecorded)
    of a ``git clone --local``, a session from the image and a fresh one: interleaved, so that
    the load of a shared machine weighs on all three alike."""
    extra = {"OPENINSPECT_SANDBOX__IMAGES__CHECK_INTERVAL_S": "0.5"}
    image_s: list[float] = []
    ready_s: list[float] = []
    fresh_s: list[float] = []
    clone_s: list[float] = []
    async with bench_env("image", extra) as env:
        work = await asyncio.to_thread(grow_repo, env.origin, env.root, files)
        async with env.client() as client:
            await client.request(
                "POST", "/api/repos", json={"name": REPO_NAME, "url": str(env.origin)}
            )
            await client.request("PUT", f"/api/repos/{REPO_NAME}/image", json={"enabled": True})
        built = await _wait_for_image(env)
        progress(f"image: built {built['id']} ({built['size_bytes']} bytes)")
        (work / "pushed.txt").write_text("after the image\n")
        await asyncio.to_thread(_commit, work, PUSHED)
        await _image_sample(env, "image warm-up")  # one-time costs
        await _fresh_sample(env, "fresh warm-up")
        for i in range(samples):
            clone_s += await asyncio.to_thread(clone_local_s, env.origin, env.root, 1)
            took, ready = await _image_sample(env, f"image {i}")
            image_s.append(took)
            ready_s.append(ready)
            fresh_s.append(await _fresh_sample(env, f"fresh {i}"))
            progress(
                f"image {i + 1}/{samples}: from the image {ms(took)} ms, fresh {ms(fresh_s[-1])} "
                f"ms, git clone --local {ms(clone_s[-1])} ms"
            )
    image_ms, clone_ms = summarize_ms(image_s), summarize_ms(clone_s)
    return {
        "repo_image_cold_start_ms": image_ms,
        "git_clone_local_ms": clone_ms,
        "ratio_to_clone": ratio(image_ms["p50"], clone_ms["p50"]),
        "image_box_ready_ms": summarize_ms(ready_s),
        "fresh_clone_first_tool_result_ms": summarize_ms(fresh_s),
        "files": files + 5,  # and the sample repo's own
        "image_bytes": built["size_bytes"],
    }
