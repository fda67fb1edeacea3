"""The agent loop against the scripted model over real HTTP: limits, history, events.

The session is replaced by an in-memory host whose sandbox is unavailable: these tests are about
the loop, and tool failures reach the model as results, so no sandbox is needed to exercise it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from openinspect.agent.conversation import Conversation
from openinspect.agent.models import ModelRegistry
from openinspect.agent.runner import PromptRun, run_prompt
from openinspect.domain.events import AgentTextDelta, Event
from openinspect.errors import SandboxUnavailable
from openinspect.sandboxes.bridge import SandboxConnection
from openinspect.settings import AgentSettings, ModelProviderSettings, Settings
from openinspect.testing.llm_server import ScriptedLLMServer


class MemoryHost:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.deltas: list[AgentTextDelta] = []
        self.rows: list[str] = []
        """The stored conversation, as the store keeps it: one JSON message per row."""
        self.written: list[int] = []
        """Characters written by each save."""

    async def sandbox(self) -> SandboxConnection:
        raise SandboxUnavailable("no sandbox in this test")

    async def emit(self, event: Event) -> None:
        self.events.append(event)

    async def publish(self, event: AgentTextDelta) -> None:
        self.deltas.append(event)

    async def save_conversation(self, start: int, rows: Sequence[str]) -> None:
        assert 0 <= start <= len(self.rows), "a write may not leave a gap"
        self.rows[start:] = rows
        self.written.append(sum(len(r) for r in rows))


@pytest.fixture
def llm() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer({"turns": []}) as server:
        yield server


def registry(llm: ScriptedLLMServer) -> ModelRegistry:
    return ModelRegistry(
        Settings(models=ModelProviderSettings(openai_compatible_base_url=llm.openai_base_url))
    )


def tool_turns(n: int) -> list[dict[str, object]]:
    return [
        {"text": f"step {i}", "tool_calls": [{"name": "glob", "args": {"pattern": "*"}}]}
        for i in range(n)
    ]


RUN = PromptRun(
    session_id="ses_1",
    prompt_id="prm_1",
    content="go",
    model_id="openai-compatible:m",
    effort=None,
    branch="openinspect/1",
)


async def test_more_than_fifty_steps_are_allowed_up_to_our_limit(llm: ScriptedLLMServer) -> None:
    llm.reset({"turns": [*tool_turns(55), {"text": "finished"}]})
    host = MemoryHost()
    outcome = await run_prompt(
        RUN, host, Conversation(), registry(llm), AgentSettings(max_steps=100)
    )
    assert outcome.status == "success", outcome.error
    results = [e for e in host.events if e.type == "tool-result"]
    assert len(results) == 55
    assert all(r.is_error and "sandbox_unavailable" in r.output for r in results)  # type: ignore[union-attr]
    assert host.deltas, "text streams as deltas"


async def test_step_limit_ends_the_prompt_with_a_clear_error(llm: ScriptedLLMServer) -> None:
    llm.reset({"turns": tool_turns(10)})
    host = MemoryHost()
    outcome = await run_prompt(RUN, host, Conversation(), registry(llm), AgentSettings(max_steps=3))
    assert outcome.status == "error" and outcome.error is not None
    assert outcome.error.code == "step_limit"
    assert "3" in outcome.error.message
    # The history saved after the cut is valid: every tool call has an answer.
    llm.reset({"turns": [{"text": "resumed"}]})
    again = await run_prompt(RUN, host, Conversation(host.rows), registry(llm), AgentSettings())
    assert again.status == "success"


async def test_cost_limit(llm: ScriptedLLMServer, tmp_path: Path) -> None:
    # Scripted models carry a nominal price, so spend accrues without a real provider.
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"turns": tool_turns(10)}))
    run = dataclasses.replace(RUN, model_id="scripted:script.json")
    host = MemoryHost()
    models = ModelRegistry(Settings(models=ModelProviderSettings(scripted_dir=tmp_path)))
    try:
        outcome = await run_prompt(
            run, host, Conversation(), models, AgentSettings(max_cost_usd=0.000001)
        )
    finally:
        models.close()
    assert outcome.error is not None and outcome.error.code == "cost_limit"
    usage = [e for e in host.events if e.type == "usage"]
    # One usage per model response, each keyed by its step (the store counts each cost once).
    assert [u.step for u in usage] == list(range(len(usage)))  # type: ignore[union-attr]
    assert sum(u.cost_usd for u in usage) > 0.000001  # type: ignore[union-attr]


async def test_time_limit(llm: ScriptedLLMServer) -> None:
    llm.reset({"turns": [{"text": "slow", "delay_ms": 3000}]})
    outcome = await run_prompt(
        RUN, MemoryHost(), Conversation(), registry(llm), AgentSettings(max_wall_s=0.5)
    )
    assert outcome.error is not None and outcome.error.code == "time_limit"


async def test_an_unreachable_model_server_is_named_with_its_url_and_setting() -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    models = ModelRegistry(Settings(models=ModelProviderSettings(openai_compatible_base_url=url)))
    outcome = await run_prompt(RUN, MemoryHost(), Conversation(), models, AgentSettings())
    assert outcome.status == "error" and outcome.error is not None
    assert outcome.error.code == "model_unreachable"
    assert url in outcome.error.message and "openai-compatible" in outcome.error.message
    assert outcome.error.hint is not None
    assert "OPENINSPECT_MODELS__OPENAI_COMPATIBLE_BASE_URL" in outcome.error.hint


async def test_a_session_reuses_its_agent_and_the_tools_are_built_once(
    llm: ScriptedLLMServer,
) -> None:
    """Building the tools makes their JSON schemas (tens of ms); a follow-up prompt of the
    session runs on the agent its first prompt built, and continues the conversation."""
    from openinspect.agent.runner import Agents, _tools

    models, agents, host, conversation = registry(llm), Agents(), MemoryHost(), Conversation()
    first = agents.get(models, RUN)
    assert agents.get(models, RUN) is first
    assert agents.get(models, dataclasses.replace(RUN, branch="other")) is not first
    assert _tools() is _tools()
    llm.reset({"turns": [{"text": "one"}, {"text": "two"}]})
    for content in ("first", "second"):
        run = dataclasses.replace(RUN, content=content)
        outcome = await run_prompt(run, host, conversation, models, AgentSettings(), agents)
        assert outcome.status == "success", outcome.error
    assert agents.get(models, RUN) is first
    sent = json.dumps(llm.requests[-1].body["messages"])
    assert "first" in sent and "one" in sent and "second" in sent
