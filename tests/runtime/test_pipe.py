"""The runtime's ``pipe`` method, called through its RPC server (no bridge): a real process
whose stdin is fed by ``input`` messages, even those sent before its process has started."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from openinspect.runtime.executor import Executor
from openinspect.runtime.protocol import RpcFailure
from openinspect.runtime.rpc import RpcServer
from tests.runtime.test_executor import Recorder

ECHO = "import sys\nfor line in sys.stdin:\n    print('got ' + line.strip(), flush=True)\n"


class Collecting:
    """An outbox that keeps what the RPC server sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def put(self, message: dict[str, Any], droppable: bool = False) -> bool:
        self.sent.append(message)
        return True

    def answer(self, rid: str) -> dict[str, Any] | None:
        return next((m for m in self.sent if m.get("id") == rid and "chunk" not in m), None)

    def stdout(self, rid: str) -> str:
        return "".join(
            m["chunk"]["data"]
            for m in self.sent
            if m.get("id") == rid and "chunk" in m and m["chunk"]["stream"] == "stdout"
        )


@pytest.fixture
def executor(tmp_path: Path) -> Executor:
    (tmp_path / "echo.py").write_text(ECHO)
    return Executor(tmp_path, {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"})


async def _until(check: Any, timeout_s: float = 10) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.02)


async def test_input_reaches_the_process_and_closing_it_ends_the_process(
    executor: Executor,
) -> None:
    outbox = Collecting()
    rpc = RpcServer(executor, outbox)  # type: ignore[arg-type]
    params = {"argv": [sys.executable, "echo.py"], "timeout_s": 30}
    rpc.handle({"id": "p1", "method": "pipe", "params": params})
    rpc.handle({"input": "p1", "data": "one\ntw"})  # before the process has even started
    rpc.handle({"input": "p1", "data": "o\n"})
    await _until(lambda: outbox.stdout("p1") == "got one\ngot two\n")
    rpc.handle({"input": "p1", "data": None})
    await _until(lambda: outbox.answer("p1") is not None)
    answer = outbox.answer("p1")
    assert answer is not None
    assert answer["result"]["exit_code"] == 0 and not answer["result"]["timed_out"]
    rpc.handle({"input": "p1", "data": "late\n"})  # a pipe that ended: nothing
    rpc.handle({"input": "nope", "data": "x"})
    await rpc.close()


async def test_a_cancelled_pipe_is_killed(executor: Executor) -> None:
    outbox = Collecting()
    rpc = RpcServer(executor, outbox)  # type: ignore[arg-type]
    rpc.handle(
        {"id": "p2", "method": "pipe", "params": {"argv": ["sleep", "600"], "timeout_s": 600}}
    )
    await asyncio.sleep(0.3)
    rpc.handle({"cancel": "p2"})
    await _until(lambda: outbox.answer("p2") is not None, 8)
    assert outbox.answer("p2")["error"]["code"] == "cancelled"  # type: ignore[index]


@pytest.mark.parametrize(
    "params",
    [
        {"argv": [], "timeout_s": 5},
        {"argv": "python3", "timeout_s": 5},
        {"argv": ["python3", 3], "timeout_s": 5},
        {"argv": ["python3"]},
    ],
)
async def test_bad_params_are_refused(executor: Executor, params: dict[str, Any]) -> None:
    with pytest.raises(RpcFailure) as caught:
        await executor.pipe("p3", params, Recorder())
    assert caught.value.code == "invalid_params"


async def test_a_program_that_does_not_exist_is_an_io_error(executor: Executor) -> None:
    with pytest.raises(RpcFailure) as caught:
        await executor.pipe("p4", {"argv": ["/no/such/program"], "timeout_s": 5}, Recorder())
    assert caught.value.code == "io_error"
    assert "/no/such/program" in caught.value.message
