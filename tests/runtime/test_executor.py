"""The runtime's RPC methods, called directly (no bridge): real bash, real files, real git."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from openinspect.runtime.bridge import Outbox
from openinspect.runtime.executor import Executor
from openinspect.runtime.protocol import RpcFailure, Stream
from openinspect.runtime.rpc import RpcServer
from openinspect.runtime.supervisor import ConfigMissing, RuntimeConfig, command_environment

STOP_WITHIN_S = 5.0


class Recorder:
    """Collects ``exec`` output chunks."""

    def __init__(self) -> None:
        self.chunks: list[tuple[Stream, str]] = []

    async def __call__(self, stream: Stream, data: str) -> None:
        self.chunks.append((stream, data))

    def text(self, stream: Stream) -> str:
        return "".join(d for s, d in self.chunks if s == stream)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "a.py").write_text("import os\nVALUE = 1\n")
    (root / "src" / "b.ts").write_text("const value = 2;\n")
    (root / "README.md").write_text("# Title\nvalue here\n")
    (root / "blob.bin").write_bytes(b"value\0\x01\x02")
    (root / "build").mkdir()
    (root / "build" / "out.py").write_text("VALUE = 'generated'\n")
    (root / ".gitignore").write_text("build/\n")
    subprocess.run(["git", "init", "--quiet", str(root)], check=True)
    (root / ".git" / "value-in-git-dir").write_text("value\n")
    return root


@pytest.fixture
def executor(repo: Path) -> Executor:
    return Executor(repo, {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"})


@pytest.fixture
def marker() -> Iterator[str]:
    value = f"oi-exec-{uuid.uuid4().hex}"
    yield value
    for pid in _pids(value):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _pids(marker: str) -> list[int]:
    done = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    return [int(p) for p in done.stdout.split()]


async def _gone(marker: str, timeout_s: float) -> list[int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (left := _pids(marker)) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return left


async def _running(marker: str) -> None:
    while not _pids(marker):
        await asyncio.sleep(0.05)


async def test_exec_streams_both_streams_and_returns_the_status(
    executor: Executor, repo: Path
) -> None:
    out = Recorder()
    result = await executor.exec(
        {
            "command": "echo out; echo err >&2; pwd; echo $EXTRA; exit 4",
            "timeout_s": 30,
            "env": {"EXTRA": "x"},
        },
        out,
    )
    assert result["exit_code"] == 4
    assert result["timed_out"] is False
    assert result["duration_ms"] >= 0
    assert out.text("stdout") == f"out\n{repo}\nx\n"
    assert out.text("stderr") == "err\n"


async def test_exec_batches_output(executor: Executor) -> None:
    out = Recorder()
    await executor.exec(
        {"command": "for i in $(seq 1 5000); do echo line $i; done", "timeout_s": 30}, out
    )
    assert out.text("stdout").count("\n") == 5000
    assert len(out.chunks) < 100  # batched, not one message per write


async def test_exec_keeps_characters_split_across_reads(executor: Executor) -> None:
    out = Recorder()
    await executor.exec(
        {"command": r"printf '\xc3'; sleep 0.2; printf '\xa9\xff\n'", "timeout_s": 30}, out
    )
    assert out.text("stdout") == "é\ufffd\n"


async def test_exec_timeout_kills_the_whole_group(executor: Executor, marker: str) -> None:
    out = Recorder()
    # The subshell double-forks a sleeper into the group and exits at once.
    command = (
        f"echo begun; ( bash -c 'exec -a {marker} sleep 600' & ); "
        f"bash -c 'exec -a {marker} sleep 600'"
    )
    result = await executor.exec({"command": command, "timeout_s": 0.5}, out)
    assert result["timed_out"] is True
    assert result["exit_code"] in (128 + signal.SIGTERM, 128 + signal.SIGKILL)
    assert out.text("stdout") == "begun\n"
    assert await _gone(marker, STOP_WITHIN_S) == []


async def test_exec_kills_children_that_ignore_sigterm(executor: Executor, marker: str) -> None:
    command = f"bash -c 'trap \"\" TERM; exec -a {marker} sleep 600' & wait"
    result = await executor.exec({"command": command, "timeout_s": 0.3}, Recorder())
    assert result["timed_out"] is True
    assert await _gone(marker, STOP_WITHIN_S) == []


async def test_cancel_kills_the_group_within_seconds(executor: Executor, marker: str) -> None:
    task = asyncio.create_task(
        executor.exec(
            {"command": f"bash -c 'exec -a {marker} sleep 600'", "timeout_s": 600}, Recorder()
        )
    )
    await _running(marker)
    loop = asyncio.get_running_loop()
    started = loop.time()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _gone(marker, STOP_WITHIN_S) == []
    assert loop.time() - started < STOP_WITHIN_S


async def test_background_child_does_not_hold_exec_open(executor: Executor, marker: str) -> None:
    out = Recorder()
    result = await executor.exec(
        {"command": f"bash -c 'exec -a {marker} sleep 600' & echo started", "timeout_s": 60}, out
    )
    assert result["timed_out"] is False
    assert result["exit_code"] == 0
    assert out.text("stdout") == "started\n"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"timeout_s": 5}, "invalid_params"),
        ({"command": "true"}, "invalid_params"),
        ({"command": "true", "timeout_s": 0}, "invalid_params"),
        ({"command": "true", "timeout_s": 5, "env": {"A": 1}}, "invalid_params"),
        ({"command": "true", "timeout_s": 5, "cwd": "no/such/dir"}, "not_found"),
    ],
)
async def test_exec_rejects_bad_params(
    executor: Executor, params: dict[str, object], code: str
) -> None:
    with pytest.raises(RpcFailure) as failure:
        await executor.exec(params, Recorder())
    assert failure.value.code == code


async def test_exec_relative_cwd(executor: Executor, repo: Path) -> None:
    out = Recorder()
    await executor.exec({"command": "pwd", "cwd": "src", "timeout_s": 5}, out)
    assert out.text("stdout") == f"{repo / 'src'}\n"


async def test_read_file_windows_and_counts(executor: Executor, repo: Path) -> None:
    (repo / "lines.txt").write_text("".join(f"line {i}\r\n" for i in range(1, 11)))
    whole = await executor.run("read_file", {"path": "lines.txt"}, Recorder())
    assert whole["total_lines"] == 10
    assert whole["content"].startswith("line 1\r\nline 2\r\n")
    window = await executor.run(
        "read_file", {"path": str(repo / "lines.txt"), "offset": 9, "limit": 5}, Recorder()
    )
    assert window == {"content": "line 9\r\nline 10\r\n", "total_lines": 10, "truncated": False}


@pytest.mark.parametrize(
    ("method", "params", "code"),
    [
        ("read_file", {"path": "missing.txt"}, "not_found"),
        ("read_file", {"path": "src"}, "io_error"),
        ("read_file", {"path": "README.md", "offset": 0}, "invalid_params"),
        ("read_file", {"path": 3}, "invalid_params"),
        ("write_file", {"path": "src", "content": "x"}, "io_error"),
        ("edit_file", {"path": "missing.txt", "old": "a", "new": "b"}, "not_found"),
        ("edit_file", {"path": "README.md", "old": "", "new": "b"}, "invalid_params"),
        ("glob", {"pattern": "../*"}, "invalid_params"),
        ("grep", {"pattern": "("}, "invalid_params"),
        ("grep", {"pattern": "x", "path": "nowhere"}, "not_found"),
        ("teleport", {}, "unknown_method"),
    ],
)
async def test_file_method_errors(
    executor: Executor, method: str, params: dict[str, object], code: str
) -> None:
    with pytest.raises(RpcFailure) as failure:
        await executor.run(method, params, Recorder())
    assert failure.value.code == code
    assert failure.value.message


async def test_write_creates_parents_and_edit_replaces_once(executor: Executor, repo: Path) -> None:
    written = await executor.run(
        "write_file", {"path": "new/deep/f.txt", "content": "a b a\n"}, Recorder()
    )
    assert written == {"path": "new/deep/f.txt", "bytes": 6}
    with pytest.raises(RpcFailure) as ambiguous:
        await executor.run(
            "edit_file", {"path": "new/deep/f.txt", "old": "a", "new": "c"}, Recorder()
        )
    assert ambiguous.value.code == "edit_ambiguous"
    assert "found 2 times" in ambiguous.value.message
    with pytest.raises(RpcFailure) as missing:
        await executor.run(
            "edit_file", {"path": "new/deep/f.txt", "old": "zzz", "new": "c"}, Recorder()
        )
    assert missing.value.code == "edit_no_match"
    assert "not found" in missing.value.message
    await executor.run(
        "edit_file", {"path": "new/deep/f.txt", "old": "a b", "new": "x"}, Recorder()
    )
    assert (repo / "new" / "deep" / "f.txt").read_text() == "x a\n"


async def test_edit_keeps_bytes_that_are_not_utf8(executor: Executor, repo: Path) -> None:
    (repo / "latin1.txt").write_bytes(b"caf\xe9 = 1\n")
    await executor.run("edit_file", {"path": "latin1.txt", "old": "= 1", "new": "= 2"}, Recorder())
    assert (repo / "latin1.txt").read_bytes() == b"caf\xe9 = 2\n"


async def test_glob_is_sorted_relative_and_skips_git(executor: Executor) -> None:
    result = await executor.run("glob", {"pattern": "**/*.{py,ts}"}, Recorder())
    assert result == {"paths": ["build/out.py", "src/b.ts", "src/pkg/a.py"], "truncated": False}
    top = await executor.run("glob", {"pattern": "*"}, Recorder())
    assert ".git" not in top["paths"]
    assert "README.md" in top["paths"]
    everything = await executor.run("glob", {"pattern": "**"}, Recorder())
    assert not any(p.startswith(".git/") for p in everything["paths"])


async def test_grep_skips_git_ignored_and_binary_files(executor: Executor) -> None:
    result = await executor.run("grep", {"pattern": "(?i)value"}, Recorder())
    assert result == {
        "matches": [
            "README.md:2:value here",
            "src/b.ts:1:const value = 2;",
            "src/pkg/a.py:2:VALUE = 1",
        ],
        "truncated": False,
    }
    scoped = await executor.run("grep", {"pattern": "VALUE", "path": "src/pkg"}, Recorder())
    assert scoped["matches"] == ["src/pkg/a.py:2:VALUE = 1"]


async def test_grep_caps_results(executor: Executor, repo: Path) -> None:
    (repo / "many.txt").write_text("hit\n" * 600)
    result = await executor.run("grep", {"pattern": "hit"}, Recorder())
    assert result["truncated"] is True
    assert len(result["matches"]) == 500


async def test_rpc_server_runs_a_replayed_request_once(executor: Executor, repo: Path) -> None:
    outbox = Outbox()
    server = RpcServer(executor, outbox)
    request = {
        "id": "r1",
        "method": "exec",
        "params": {"command": "echo run >> runs.txt; sleep 0.2", "timeout_s": 10},
    }
    server.handle(request)
    server.handle(request)  # re-sent while running: ignored
    answers: list[dict[str, object]] = []
    while not answers:
        message = json.loads(await outbox.peek())
        await outbox.pop()
        if "result" in message:
            answers.append(message)
    server.handle(request)  # re-sent after it finished: the same answer again, not a new run
    again = json.loads(await outbox.peek())
    await server.close()
    assert again == answers[0]
    assert (repo / "runs.txt").read_text() == "run\n"


async def test_rpc_server_answers_cancel_with_cancelled(executor: Executor) -> None:
    outbox = Outbox()
    server = RpcServer(executor, outbox)
    server.handle(
        {"id": "c1", "method": "exec", "params": {"command": "sleep 600", "timeout_s": 600}}
    )
    await asyncio.sleep(0.1)
    server.handle({"cancel": "c1"})
    message = json.loads(await outbox.peek())
    await server.close()
    assert message == {"id": "c1", "error": {"code": "cancelled", "message": "exec was cancelled"}}


def test_config_names_every_missing_variable() -> None:
    with pytest.raises(ConfigMissing) as missing:
        RuntimeConfig.from_env({"OPENINSPECT_BOOT_MODE": "warm"})
    message = str(missing.value)
    assert "OPENINSPECT_BRIDGE_URL is not set" in message
    assert "OPENINSPECT_SANDBOX_TOKEN is not set" in message
    assert "must be one of build, fresh, repo_image, snapshot_restore" in message


def test_main_exits_with_a_clear_message_when_env_is_missing() -> None:
    done = subprocess.run(
        ["/usr/bin/python3", "-m", "openinspect.runtime"],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(Path(__file__).parents[2] / "src") + ":" + _websockets_parent(),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "OPENINSPECT_SANDBOX_ID is not set" in done.stderr


def _websockets_parent() -> str:
    import websockets

    return str(Path(websockets.__file__).parent.parent)


def test_commands_do_not_inherit_the_runtime_secrets() -> None:
    import openinspect

    own_lib = str(Path(openinspect.__file__).parent.parent)
    env = command_environment(
        {
            "OPENINSPECT_SANDBOX_TOKEN": "t",
            "OPENINSPECT_BRIDGE_URL": "unix:///s",
            "OPENINSPECT_SANDBOX_ID": "sbx",
            "PYTHONPATH": f"{own_lib}:/workspace/repo/src",
        }
    )
    assert env == {"OPENINSPECT_SANDBOX_ID": "sbx", "PYTHONPATH": "/workspace/repo/src"}


def test_runtime_imports_only_the_stdlib_and_websockets() -> None:
    """The box holds nothing else: a new dependency would break every sandbox."""
    import ast
    import sys

    import openinspect.runtime

    allowed = set(sys.stdlib_module_names) | {"websockets", "__future__"}
    runtime_dir = Path(openinspect.runtime.__file__).parent
    for source in runtime_dir.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{source.name} imports {name}"


async def test_read_file_shows_the_start_of_a_giant_line(executor: Executor, repo: Path) -> None:
    from openinspect.runtime.files import MAX_READ_CHARS

    (repo / "min.js").write_text("x" * (MAX_READ_CHARS + 10) + "\nend\n")
    result = await executor.run("read_file", {"path": "min.js"}, Recorder())
    assert result["truncated"] is True
    assert result["total_lines"] == 2
    assert len(result["content"]) == MAX_READ_CHARS


async def test_a_command_killed_by_sigkill_is_told_the_likely_cause(executor: Executor) -> None:
    out = Recorder()
    result = await executor.exec({"command": "echo before; kill -9 $$", "timeout_s": 30}, out)
    assert result["exit_code"] == 128 + signal.SIGKILL
    assert out.text("stdout") == "before\n"
    assert "killed (SIGKILL)" in out.text("stderr")
    assert "ran out of memory" in out.text("stderr")

    quiet = Recorder()
    await executor.exec({"command": "exit 9", "timeout_s": 30}, quiet)
    assert quiet.text("stderr") == ""
