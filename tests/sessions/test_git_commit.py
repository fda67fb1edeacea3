"""The end-of-prompt commit and push: generated artefacts and oversized files stay out of the
commit, and only a new commit is pushed (a prompt that changed nothing pushes nothing)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from openinspect.cli.client import Client
from openinspect.sessions.git import (
    GIT_MESSAGE_MAX_CHARS,
    CommitInfo,
    SkippedFile,
    _parse_commit_output,
    clip_git_output,
)
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess
from tests.e2e.helpers import client_for, collect, finished

BIG_BYTES = 6 * 1024 * 1024  # over the 5 MiB default


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def bash(command: str) -> dict[str, Any]:
    return {"turns": [{"tool_calls": [{"name": "bash", "args": {"command": command}}]}]}


async def run(
    client: Client, llm: ScriptedLLMServer, sid: str, script: dict[str, Any]
) -> list[dict[str, Any]]:
    llm.reset(script)
    prompt = await client.post_prompt(sid, content="go")
    events = await collect(client, sid, finished(prompt["id"]), timeout_s=180)
    mine = [e for e in events if e.get("prompt_id") == prompt["id"]]
    assert mine[-1]["status"] == "success", mine[-1]
    return mine


def types(events: list[dict[str, Any]]) -> set[str]:
    return {e["type"] for e in events}


@pytest.mark.e2e
@pytest.mark.timeout(600)  # four prompts
async def test_generated_and_large_files_stay_out_and_no_op_prompts_push_nothing(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path, tmp_path: Path
) -> None:
    # A repo without a .gitignore, that tracks one file under build/.
    work = tmp_path / "repo" / "work"
    git(work, "rm", "--quiet", ".gitignore")
    (work / "build").mkdir()
    (work / "build" / "keep.txt").write_text("tracked\n")
    git(work, "add", "build/keep.txt")
    git(work, "-c", "user.name=D", "-c", "user.email=d@e", "commit", "--quiet", "-m", "build")
    git(work, "push", "--quiet", str(origin), "main")
    async with client_for(server) as client:
        session = (await client.create_session(repo=str(origin)))["session"]
        sid, branch = session["id"], session["branch"]

        # A prompt that changes nothing pushes nothing: the branch matches its base.
        chat = await run(client, llm, sid, {"turns": [{"text": "Just answering."}]})
        assert not types(chat) & {"git-commit", "git-push"}
        assert git(origin, "branch", "--list", branch) == ""
        diff = await client.request("GET", f"/api/sessions/{sid}/diff")
        assert (diff["files"], diff["head_sha"]) == ([], None)

        # Only generated files: nothing to commit, nothing to push.
        junk = await run(
            client,
            llm,
            sid,
            bash(
                "mkdir -p __pycache__ .pytest_cache node_modules/left-pad pkg.egg-info && "
                "touch __pycache__/calc.cpython-311.pyc .pytest_cache/v node_modules/left-pad/i.js"
                " pkg.egg-info/PKG-INFO .DS_Store stray.pyc && git status --short"
            ),
        )
        assert not types(junk) & {"git-commit", "git-push"}
        assert git(origin, "branch", "--list", branch) == ""

        # A real change: committed and pushed without the artefacts; the big file is named.
        change = await run(
            client,
            llm,
            sid,
            bash(
                "sed -i 's/a - b/a + b/' calc.py && echo new > build/new.txt && "
                "mkdir -p dist && echo out > dist/out.js && "
                f"head -c {BIG_BYTES} /dev/zero > big.bin && echo small > notes.txt"
            ),
        )
        [commit] = [e for e in change if e["type"] == "git-commit"]
        [push] = [e for e in change if e["type"] == "git-push"]
        assert push["sha"] == commit["sha"] == git(origin, "rev-parse", branch)
        tree = set(git(origin, "ls-tree", "-r", "--name-only", branch).splitlines())
        assert {"calc.py", "build/keep.txt", "build/new.txt", "notes.txt"} <= tree
        leaked = {p for p in tree if p.endswith((".pyc", ".js", "PKG-INFO", ".DS_Store", "/v"))}
        assert leaked == set() and "big.bin" not in tree
        changed = git(origin, "diff", "--name-only", "main", branch).splitlines()
        assert sorted(changed) == ["build/new.txt", "calc.py", "notes.txt"]
        assert commit["files_changed"] == 3
        [warning] = [e for e in change if e["type"] == "warning"]
        assert warning["code"] == "files_too_large"
        assert f"big.bin ({BIG_BYTES:,} bytes)" in warning["message"]

        # Another prompt that changes nothing: no second push row.
        again = await run(client, llm, sid, {"turns": [{"text": "Still fine."}]})
        assert not types(again) & {"git-commit", "git-push"}


def test_the_commit_scripts_report_is_parsed() -> None:
    out = "skipped 7000000 data/big file.bin\ncommit abc123\nfiles 2\n"
    result = _parse_commit_output(out, "msg")
    assert result.commit == CommitInfo(sha="abc123", message="msg", files_changed=2)
    assert result.skipped == (SkippedFile("data/big file.bin", 7_000_000),)
    assert _parse_commit_output("skipped 9 x\n", "m").commit is None


def test_git_output_is_cut_and_names_no_addresses() -> None:
    raw = (
        "remote: openinspect: push refused\n"
        "To http://127.0.0.1:41234/git/ses_1/acme/widgets.git\n"
        " ! [remote rejected] HEAD -> openinspect/1 (pre-receive hook declined)\n"
        "hint: Updates were rejected because the remote contains work\n"
        "error: failed to push some refs to 'http://127.0.0.1:41234/git/ses_1/acme/widgets.git'\n"
    )
    assert clip_git_output(raw) == (
        "remote: openinspect: push refused\n"
        " ! [remote rejected] HEAD -> openinspect/1 (pre-receive hook declined)\n"
        "error: failed to push some refs to 'origin'"
    )
    long = "\n".join(f"remote: line {i}" for i in range(1000)) + "\nerror: the end"
    clipped = clip_git_output(long)
    assert len(clipped) == GIT_MESSAGE_MAX_CHARS
    assert clipped.startswith("remote: line 0") and clipped.endswith("error: the end")
    assert clip_git_output("\n\n") == "git gave no reason"
