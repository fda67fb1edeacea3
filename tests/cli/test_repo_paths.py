"""``--repo`` is resolved where the CLI runs: a relative path, or none at all, means the git
repository the person is in, never a directory of the server's; errors name the absolute path
that was tried. ``run`` ends with where to look and how to get the branch."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess
from tests.cli.helpers import cli

pytestmark = pytest.mark.e2e
SESSION_ID = re.compile(r"ses_[0-9A-Za-z]+")


def work_tree(origin: Path) -> Path:
    """The sample's non-bare clone (``make_sample_repo`` pushed from it), with a subdirectory."""
    work = origin.parent / "work"
    (work / "pkg").mkdir()
    return work.resolve()


def outside_any_repo(tmp_path: Path) -> dict[str, str]:
    """Stop git's search for a repository at ``tmp_path``, wherever the temp dir lives."""
    return {"GIT_CEILING_DIRECTORIES": str(tmp_path)}


def test_run_from_a_subdirectory_works_on_that_repo_and_says_how_to_check_it_out(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path
) -> None:
    work = work_tree(origin)
    llm.reset(
        {
            "turns": [
                {
                    "text": "Writing it.",
                    "tool_calls": [
                        {"name": "write", "args": {"path": "hello.txt", "content": "hello\n"}}
                    ],
                },
                {"text": "Done."},
            ]
        }
    )
    done = cli("run", "add hello.txt", "--repo", ".", server=server, cwd=work / "pkg")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    session_id = SESSION_ID.search(out)
    assert session_id is not None, out
    sid = session_id.group(0)
    # The header names the resolved repository: the root, not the subdirectory or ".".
    assert f"on {work} (" in out, out
    session = httpx.get(
        f"{server.url}/api/sessions/{sid}",
        headers={"Authorization": f"Bearer {server.token}"},
    ).json()["session"]
    assert session["repo_url"] == str(work)

    lines = out.rstrip().splitlines()
    assert f"web       {server.url}/sessions/{sid}" in lines
    assert "changes   1 file changed, 1 insertion(+), 0 deletions(-)" in lines
    assert lines[-1] == f"checkout  git switch {session['branch']}", out
    # The printed command works as written, from where the person is.
    switched = subprocess.run(
        lines[-1].removeprefix("checkout  "),
        shell=True,
        cwd=work / "pkg",
        capture_output=True,
        text=True,
        check=False,
    )
    assert switched.returncode == 0, switched.stderr
    assert (work / "hello.txt").read_text() == "hello\n"


def test_run_without_repo_uses_the_repo_it_is_run_in(
    server: ServerProcess, llm: ScriptedLLMServer, origin: Path
) -> None:
    work = work_tree(origin)
    llm.reset({"turns": [{"text": "Nothing to change."}]})
    done = cli("run", "look around", server=server, cwd=work / "pkg")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"on {work} (" in done.stdout
    assert re.search(r"changes   none: openinspect/\S+ matches main", done.stdout), done.stdout
    assert "checkout" not in done.stdout  # nothing to check out

    # From elsewhere, the command names the repository to switch in.
    bare = cli("run", "look again", "--repo", str(origin), server=server, cwd=origin.parent)
    assert bare.returncode == 0, bare.stderr
    assert f"on {origin.resolve()} (" in bare.stdout


def test_repo_errors_name_the_absolute_path_tried(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    env = outside_any_repo(tmp_path)

    nowhere = cli("run", "x", cwd=plain, env=env)
    assert nowhere.returncode == 2
    assert "invalid_input" in nowhere.stderr
    assert f"{plain} is not inside a git repository" in nowhere.stderr
    assert "hint:" in nowhere.stderr

    missing = cli("run", "x", "--repo", "../missing", cwd=plain, env=env)
    assert missing.returncode == 2
    assert f"Repo path does not exist: {tmp_path / 'missing'}" in missing.stderr

    not_git = cli("run", "x", "--repo", "plain", cwd=tmp_path, env=env)
    assert not_git.returncode == 2
    assert f"Not a git repository: {plain}" in not_git.stderr
