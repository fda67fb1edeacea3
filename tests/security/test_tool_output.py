"""A tool that prints 200 MB: a real command in a real bubblewrap box, streamed over the real
bridge into the agent's ``bash`` tool, driven by the scripted model over HTTP. The stored event
and the model's copy both keep the last lines and say where and how much was cut, and the control
plane (this process: bridge server, connection, tool) never holds the output whole.
"""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from openinspect.agent.conversation import Conversation
from openinspect.agent.models import ModelRegistry
from openinspect.agent.runner import PromptRun, run_prompt
from openinspect.domain.events import AgentTextDelta, Event, ToolResult
from openinspect.sandboxes.bridge import SandboxConnection
from openinspect.sandboxes.bwrap import BwrapProvider
from openinspect.settings import AgentSettings, ModelProviderSettings, Settings
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.sandboxes.conftest import (  # noqa: F401  (fixtures used by name)
    StartSandbox,
    bridge,
    repo_origin,
    settings,
)
from tests.sandboxes.conftest import bwrap_provider as bwrap_provider
from tests.sandboxes.conftest import start_sandbox as start_sandbox

LAST = 25_000_000
"""``seq 1 LAST`` prints 213,888,897 bytes."""
OUTPUT_BYTES = sum((min(LAST, 10**d - 1) - 10 ** (d - 1) + 1) * (d + 1) for d in range(1, 9))
MODEL_CHARS = 30_000
EVENT_CHARS = 64 * 1024
NOTICE = re.compile(r"\[… ([\d,]+) bytes \(([\d,]+) lines\) omitted …\]")
PEAK_SHARE = 0.05
"""The control plane's peak traced memory must stay under this share of the output."""


class BoxHost:
    """The session side of the tools, with a real sandbox behind it."""

    def __init__(self, conn: SandboxConnection) -> None:
        self.conn = conn
        self.events: list[Event] = []

    async def sandbox(self) -> SandboxConnection:
        return self.conn

    async def emit(self, event: Event) -> None:
        self.events.append(event)

    async def publish(self, event: AgentTextDelta) -> None:
        pass

    async def save_conversation(self, start: int, rows: Sequence[str]) -> None:
        pass

    async def open_pull_request(self, title: str, body: str, draft: bool) -> str:
        raise AssertionError("not in this test")


@pytest.fixture
def llm() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer({"turns": []}) as server:
        yield server


def _tool_message(request_body: dict[str, Any]) -> str:
    tool_messages = [m for m in request_body["messages"] if m.get("role") == "tool"]
    assert len(tool_messages) == 1
    content = tool_messages[0]["content"]
    return content if isinstance(content, str) else "".join(p["text"] for p in content)


def _check_cut(text: str, kept_limit: int) -> None:
    """Starts with the first lines, ends with the last ones and the exit code, and the notice
    accounts exactly for what is missing."""
    assert text.startswith("1\n2\n3\n")
    assert text.endswith(f"{LAST - 2}\n{LAST - 1}\n{LAST}\n[exit code 0]")
    found = NOTICE.findall(text)
    assert len(found) == 1
    omitted_bytes, omitted_lines = (int(n.replace(",", "")) for n in found[0])
    shown = NOTICE.sub("", text.removesuffix("[exit code 0]"))
    assert omitted_bytes == OUTPUT_BYTES - len(shown.encode()) + 1  # the notice's own newline
    assert omitted_lines == LAST - shown.count("\n") + 1
    assert len(text) < kept_limit + 200


@pytest.mark.timeout(600)
async def test_a_200_mb_output_keeps_its_tail_and_says_what_was_cut(
    bwrap_provider: BwrapProvider,
    start_sandbox: StartSandbox,
    llm: ScriptedLLMServer,
) -> None:
    box = await start_sandbox(bwrap_provider)
    await box.conn.wait_ready(120)
    llm.reset(
        {
            "turns": [
                {"tool_calls": [{"name": "bash", "args": {"command": f"seq 1 {LAST}"}}]},
                {"text": "done"},
            ]
        }
    )
    host = BoxHost(box.conn)
    models = ModelRegistry(
        Settings(models=ModelProviderSettings(openai_compatible_base_url=llm.openai_base_url))
    )
    models.preload()  # the price tables: loaded before tracing, as the server does at start
    models.build("openai-compatible:m")
    run = PromptRun("ses_1", "prm_1", "print a lot", "openai-compatible:m", None, "b")
    agent = AgentSettings(tool_output_chars=MODEL_CHARS, tool_event_output_chars=EVENT_CHARS)
    tracemalloc.start()
    try:
        outcome = await run_prompt(run, host, Conversation(), models, agent)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        models.close()
    assert outcome.status == "success", outcome.error

    result = next(e for e in host.events if isinstance(e, ToolResult))
    assert result.exit_code == 0 and result.truncated_for_model
    _check_cut(result.output, EVENT_CHARS)
    for_model = _tool_message(llm.requests[1].body)
    _check_cut(for_model, MODEL_CHARS)
    assert peak < OUTPUT_BYTES * PEAK_SHARE, f"peak {peak:,} bytes of {OUTPUT_BYTES:,}"
