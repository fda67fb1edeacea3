"""The CLI tests' server: the shared one, given longer to start (these tests start one per test,
and a busy machine can take more than a minute to import and migrate)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess
from tests.conftest import server_env

SERVER_START_TIMEOUT_S = 240.0


@pytest.fixture
def server(tmp_path: Path, llm: ScriptedLLMServer) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "home", env=server_env(llm))
    proc.start(timeout_s=SERVER_START_TIMEOUT_S)
    try:
        yield proc
    finally:
        proc.stop()
