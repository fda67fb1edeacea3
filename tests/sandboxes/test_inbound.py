"""What the control plane accepts from a runtime: validated by type, cut, or refused."""

from __future__ import annotations

import json

import pytest

from openinspect.runtime.files import MAX_GLOB_RESULTS
from openinspect.runtime.protocol import MAX_CHUNK_CHARS, MAX_LOG_LINE_CHARS, MAX_MESSAGE_CHARS
from openinspect.sandboxes import inbound


def test_long_strings_are_cut_to_the_runtime_limits() -> None:
    log = inbound.parse(json.dumps({"type": "log", "source": "setup", "line": "x" * 10**6}))
    assert isinstance(log, inbound.Log) and len(log.line) == MAX_LOG_LINE_CHARS
    chunk = inbound.parse(
        json.dumps({"id": "a", "chunk": {"stream": "stdout", "data": "y" * 10**6}})
    )
    assert isinstance(chunk, inbound.Chunk) and len(chunk.chunk.data) == MAX_CHUNK_CHARS
    error = inbound.parse(
        json.dumps({"id": "a", "error": {"code": "io_error", "message": "z" * 10**5}})
    )
    assert isinstance(error, inbound.Failure) and len(error.error.message) == MAX_MESSAGE_CHARS
    boot = inbound.parse(json.dumps({"type": "boot", "phase": "failed", "message": "m" * 10**5}))
    assert isinstance(boot, inbound.Boot) and len(boot.message or "") == MAX_MESSAGE_CHARS


@pytest.mark.parametrize(
    "text",
    [
        "{oops",
        "[1, 2]",
        "[" * 100_000 + "]" * 100_000,
        json.dumps({"type": "launch"}),
        json.dumps({"type": "log", "source": "elsewhere", "line": "x"}),
        json.dumps({"type": "log", "source": "setup", "line": 7}),
        json.dumps({"type": "boot", "phase": "ready", "exit_code": 10**30}),
        json.dumps(
            {
                "type": "hello",
                "runtime_version": "1",
                "boot_mode": "fresh",
                "sandbox_id": "s" * 10_000,
                "phase": None,
            }
        ),
        json.dumps({"id": "x" * 100, "result": {}}),
        json.dumps({"id": "a", "error": {"code": "Not A Code!", "message": ""}}),
        json.dumps({"id": "a", "chunk": {"stream": "stdin", "data": ""}}),
        json.dumps({"id": "a"}),
    ],
)
def test_malformed_messages_are_refused(text: str) -> None:
    with pytest.raises(inbound.Malformed):
        inbound.parse(text)


def test_results_are_checked_and_cut_by_method() -> None:
    with pytest.raises(inbound.Malformed):
        inbound.result_of("exec", {"exit_code": "0", "timed_out": False, "duration_ms": 1})
    read = inbound.result_of(
        "read_file", {"content": "c" * 5000, "total_lines": 1, "truncated": False}, max_chars=100
    )
    assert len(read["content"]) == 100 and read["truncated"] is True
    paths = inbound.result_of("glob", {"paths": ["p"] * (MAX_GLOB_RESULTS + 5), "truncated": False})
    assert len(paths["paths"]) == MAX_GLOB_RESULTS and paths["truncated"] is True
    assert inbound.result_of("custom", {"anything": 1}) == {"anything": 1}
