"""The scripted LLM server against the real SDKs and pydantic-ai, over real HTTP on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import (
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
)
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

from openinspect.errors import OpenInspectError
from openinspect.testing._llm_wire import split_text
from openinspect.testing.llm_server import (
    DEFAULT_FINAL_TEXT,
    LLMScript,
    ScriptedLLMServer,
    ScriptError,
    load_script,
)

OPENAI_MODEL = "gpt-4o"
ANTHROPIC_MODEL = "claude-sonnet-4-6"
TOOL_OUTPUT = "README.md  src  tests"

TOOL_SCRIPT: dict[str, Any] = {
    "turns": [
        {
            "text": "Let me look at the repository first.",
            "tool_calls": [{"name": "bash", "args": {"command": "ls -a"}}],
        },
        {"text": "Done: the repository has a README, sources and tests."},
    ]
}


@pytest.fixture
def server() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(TOOL_SCRIPT, host="127.0.0.1", port=0) as srv:
        yield srv


def bash(command: str) -> str:
    """Run a shell command and return its output."""
    return TOOL_OUTPUT


# --------------------------------------------------------------------------- OpenAI SDK


def test_openai_non_streaming_text_tool_calls_and_usage(server: ScriptedLLMServer) -> None:
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="x")
    messages: list[Any] = [{"role": "user", "content": "what is here?"}]

    first = client.chat.completions.create(model=OPENAI_MODEL, messages=messages)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me look at the repository first."
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert call.type == "function"
    assert call.id == "call_1"
    assert call.function.name == "bash"
    assert json.loads(call.function.arguments) == {"command": "ls -a"}
    assert first.model == OPENAI_MODEL
    assert first.usage is not None
    assert first.usage.prompt_tokens > 0
    assert first.usage.completion_tokens > 0
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens

    second = client.chat.completions.create(model=OPENAI_MODEL, messages=messages)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == TOOL_SCRIPT["turns"][1]["text"]
    assert second.choices[0].message.tool_calls is None


def test_openai_streaming_deltas_tool_calls_and_usage(server: ScriptedLLMServer) -> None:
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="x")
    stream = client.chat.completions.create(
        model=OPENAI_MODEL,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text_deltas = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(text_deltas) >= 3
    assert "".join(text_deltas) == "Let me look at the repository first."

    call_deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert call_deltas[0].index == 0
    assert call_deltas[0].id == "call_1"
    assert call_deltas[0].function is not None
    assert call_deltas[0].function.name == "bash"
    arguments = "".join(d.function.arguments or "" for d in call_deltas if d.function)
    assert json.loads(arguments) == {"command": "ls -a"}
    assert len(call_deltas) > 2  # arguments arrive in fragments

    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["tool_calls"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0

    # Without include_usage there is no usage-only chunk, and plain text ends with "stop".
    chunks = list(
        client.chat.completions.create(
            model=OPENAI_MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.asyncio
async def test_async_openai_client_and_async_context_manager() -> None:
    async with ScriptedLLMServer({"turns": [{"text": "async hello"}]}) as srv:
        client = openai.AsyncOpenAI(base_url=srv.openai_base_url, api_key="x")
        resp = await client.chat.completions.create(
            model=OPENAI_MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        assert resp.choices[0].message.content == "async hello"
        records = await srv.wait_for_requests_async(1, timeout_s=5)
        assert records[0].protocol == "openai"
        await client.close()


# --------------------------------------------------------------------------- Anthropic SDK


def test_anthropic_non_streaming_text_tool_use_and_stop_reasons(server: ScriptedLLMServer) -> None:
    client = anthropic.Anthropic(base_url=server.base_url, api_key="x")
    kwargs: dict[str, Any] = {
        "model": ANTHROPIC_MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "what is here?"}],
    }
    first = client.messages.create(**kwargs)
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["text", "tool_use"]
    text_block, tool_block = first.content
    assert text_block.type == "text"
    assert text_block.text == "Let me look at the repository first."
    assert tool_block.type == "tool_use"
    assert tool_block.id == "toolu_1"
    assert tool_block.name == "bash"
    assert tool_block.input == {"command": "ls -a"}
    assert first.usage.input_tokens > 0
    assert first.usage.output_tokens > 0

    second = client.messages.create(**kwargs)
    assert second.stop_reason == "end_turn"
    assert [b.type for b in second.content] == ["text"]


def test_anthropic_streaming_with_thinking(server: ScriptedLLMServer) -> None:
    server.reset(
        {
            "turns": [
                {
                    "thinking": "The user wants a listing.",
                    "text": "I will list the files now.",
                    "tool_calls": [
                        {"name": "bash", "args": {"command": "ls"}},
                        {"name": "read", "args": {"path": "README.md"}},
                    ],
                },
                {"text": "Finished."},
            ]
        }
    )
    client = anthropic.Anthropic(base_url=server.base_url, api_key="x")
    kwargs: dict[str, Any] = {
        "model": ANTHROPIC_MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with client.messages.stream(**kwargs) as stream:
        text_deltas = list(stream.text_stream)
        message = stream.get_final_message()
    assert len(text_deltas) >= 3
    assert "".join(text_deltas) == "I will list the files now."
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    thinking = message.content[0]
    assert thinking.type == "thinking"
    assert thinking.thinking == "The user wants a listing."
    tools = [b for b in message.content if b.type == "tool_use"]
    assert [(t.id, t.name, t.input) for t in tools] == [
        ("toolu_1", "bash", {"command": "ls"}),
        ("toolu_2", "read", {"path": "README.md"}),
    ]
    assert message.usage.output_tokens > 1

    with client.messages.stream(**kwargs) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn"
    assert final.content[0].type == "text"
    assert final.content[0].text == "Finished."


# --------------------------------------------------------------------------- pydantic-ai


def _openai_model(srv: ScriptedLLMServer) -> OpenAIChatModel:
    return OpenAIChatModel(
        OPENAI_MODEL, provider=OpenAIProvider(base_url=srv.openai_base_url, api_key="x")
    )


def _anthropic_model(srv: ScriptedLLMServer) -> AnthropicModel:
    return AnthropicModel(
        ANTHROPIC_MODEL, provider=AnthropicProvider(base_url=srv.base_url, api_key="x")
    )


def _tool_results_in(body: dict[str, Any]) -> list[str]:
    """Tool results carried by a recorded request body, in either protocol."""
    found: list[str] = []
    for message in body["messages"]:
        if message.get("role") == "tool":
            found.append(message["content"])
        content = message.get("content")
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    inner = block["content"]
                    found.append(
                        inner if isinstance(inner, str) else "".join(p["text"] for p in inner)
                    )
    return found


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_pydantic_ai_agent_runs_scripted_tool_call(
    server: ScriptedLLMServer, protocol: str
) -> None:
    model = _openai_model(server) if protocol == "openai" else _anthropic_model(server)
    calls: list[str] = []

    def bash(command: str) -> str:  # shadows the module-level tool to record its calls
        """Run a shell command and return its output."""
        calls.append(command)
        return TOOL_OUTPUT

    agent = Agent(model, tools=[bash])
    result = await agent.run("What is in this repository?")

    assert result.output == TOOL_SCRIPT["turns"][1]["text"]
    assert calls == ["ls -a"]
    records = server.requests
    assert len(records) == 2
    assert {r.protocol for r in records} == {protocol}
    assert [r.turn for r in records] == [0, 1]
    assert _tool_results_in(records[0].body) == []
    assert _tool_results_in(records[1].body) == [TOOL_OUTPUT]
    assert records[0].body["tools"]  # the tool definition went out with the request
    usage = result.usage
    assert usage.requests == 2
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0


@pytest.mark.asyncio
async def test_pydantic_ai_streaming_with_iter_openai(server: ScriptedLLMServer) -> None:
    agent = Agent(_openai_model(server), tools=[bash])
    text_deltas: list[str] = []
    tool_events: list[str] = []
    async with agent.iter("What is in this repository?") as run:
        async for node in run:
            if Agent.is_model_request_node(node):
                async with node.stream(run.ctx) as events:
                    async for event in events:
                        if isinstance(event, PartDeltaEvent) and isinstance(
                            event.delta, TextPartDelta
                        ):
                            text_deltas.append(event.delta.content_delta)
            elif Agent.is_call_tools_node(node):
                async with node.stream(run.ctx) as tool_stream:
                    async for tool_event in tool_stream:
                        if isinstance(tool_event, FunctionToolCallEvent):
                            tool_events.append(f"call:{tool_event.part.tool_name}")
                        elif isinstance(tool_event, FunctionToolResultEvent):
                            tool_events.append(f"result:{tool_event.part.content}")
    assert run.result is not None
    assert run.result.output == TOOL_SCRIPT["turns"][1]["text"]
    assert len(text_deltas) >= 4  # several deltas for each of the two text answers
    assert tool_events == ["call:bash", f"result:{TOOL_OUTPUT}"]
    assert all(r.stream for r in server.requests)
    assert server.requests[0].body["stream_options"] == {"include_usage": True}


@pytest.mark.asyncio
async def test_pydantic_ai_run_stream_events_anthropic(server: ScriptedLLMServer) -> None:
    agent = Agent(_anthropic_model(server), tools=[bash])
    texts: dict[int, str] = {}
    deltas = 0
    answer_index: int | None = None
    async with agent.run_stream_events("What is in this repository?") as events:
        async for event in events:
            if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                texts[event.index] = event.part.content
                answer_index = event.index
            elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                texts[event.index] += event.delta.content_delta
                deltas += 1
    assert deltas >= 4
    assert answer_index is not None
    assert texts[answer_index] == TOOL_SCRIPT["turns"][1]["text"]
    assert _tool_results_in(server.requests[1].body) == [TOOL_OUTPUT]


# --------------------------------------------------------------------------- script behaviour


def test_turns_running_out_answer_final_text() -> None:
    with ScriptedLLMServer({"turns": [{"text": "only turn"}]}) as srv:
        client = openai.OpenAI(base_url=srv.openai_base_url, api_key="x")
        msgs: list[Any] = [{"role": "user", "content": "hi"}]
        answers = [client.chat.completions.create(model="m", messages=msgs) for _ in range(3)]
        assert [a.choices[0].message.content for a in answers] == [
            "only turn",
            DEFAULT_FINAL_TEXT,
            DEFAULT_FINAL_TEXT,
        ]
        assert all(a.choices[0].finish_reason == "stop" for a in answers)
        assert [r.turn for r in srv.requests] == [0, None, None]
        assert srv.turns_used == 1


def test_custom_final_text_and_no_script() -> None:
    with ScriptedLLMServer() as srv:
        client = anthropic.Anthropic(base_url=srv.base_url, api_key="x")
        msg = client.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        assert msg.content[0].type == "text"
        assert msg.content[0].text == DEFAULT_FINAL_TEXT
        assert msg.stop_reason == "end_turn"
        srv.reset({"turns": [], "final_text": "bye"})
        msg = client.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        assert msg.content[0].type == "text"
        assert msg.content[0].text == "bye"


def test_delay_ms_delays_the_response() -> None:
    script = {
        "turns": [{"text": "slow", "delay_ms": 300}, {"text": "slow stream", "delay_ms": 300}]
    }
    with ScriptedLLMServer(script) as srv:
        client = openai.OpenAI(base_url=srv.openai_base_url, api_key="x")
        started = time.monotonic()
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert time.monotonic() - started >= 0.29
        started = time.monotonic()
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        next(iter(stream))
        assert time.monotonic() - started >= 0.29


def test_requests_recorded_with_headers_but_no_secrets(server: ScriptedLLMServer) -> None:
    before = time.time()
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-secret-value")
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    [record] = server.wait_for_requests(1, timeout_s=5)
    assert record.path == "/v1/chat/completions"
    assert record.protocol == "openai"
    assert record.body["messages"] == [{"role": "user", "content": "hi"}]
    assert record.has_auth is True
    assert "authorization" not in record.headers
    assert "sk-secret-value" not in json.dumps(record.model_dump())
    assert record.headers["content-type"] == "application/json"
    assert before <= record.received_at <= time.time()
    with pytest.raises(TimeoutError):
        server.wait_for_requests(2, timeout_s=0.05)


def test_recorded_requests_and_reset_over_http(server: ScriptedLLMServer) -> None:
    oa = openai.OpenAI(base_url=server.openai_base_url, api_key="x")
    an = anthropic.Anthropic(base_url=server.base_url, api_key="x")
    oa.chat.completions.create(model="m", messages=[{"role": "user", "content": "one"}])
    an.messages.create(
        model=ANTHROPIC_MODEL, max_tokens=5, messages=[{"role": "user", "content": "two"}]
    )

    with httpx.Client(base_url=server.base_url) as http:
        records = http.get("/_scripted/requests").json()
        assert [r["protocol"] for r in records] == ["openai", "anthropic"]
        assert [r["path"] for r in records] == ["/v1/chat/completions", "/v1/messages"]
        assert records[1]["body"]["messages"][0]["content"] == "two"
        assert isinstance(records[0]["received_at"], float)

        assert http.post("/_scripted/reset").json()["ok"] is True
        assert http.get("/_scripted/requests").json() == []
        assert server.turns_used == 0
        # After a reset the script starts over from its first turn.
        resp = oa.chat.completions.create(model="m", messages=[{"role": "user", "content": "a"}])
        assert resp.choices[0].finish_reason == "tool_calls"

        new_script = {"turns": [{"text": "brand new"}]}
        reset = http.post("/_scripted/reset", json=new_script)
        assert reset.json() == {"ok": True, "turns": 1}
        resp = oa.chat.completions.create(model="m", messages=[{"role": "user", "content": "b"}])
        assert resp.choices[0].message.content == "brand new"

        bad = http.post("/_scripted/reset", json={"turns": [{"txt": "typo"}]})
        assert bad.status_code == 400
        assert "txt" in bad.json()["error"]
        assert http.get("/_scripted/health").json()["ok"] is True


def test_concurrent_requests_each_get_their_own_turn() -> None:
    script = {"turns": [{"text": f"turn {i}", "delay_ms": 50} for i in range(8)]}
    with ScriptedLLMServer(script) as srv:
        client = openai.OpenAI(base_url=srv.openai_base_url, api_key="x")
        answers: list[str] = []
        lock = threading.Lock()

        def ask() -> None:
            resp = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}]
            )
            with lock:
                answers.append(resp.choices[0].message.content or "")

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(answers) == sorted(f"turn {i}" for i in range(8))
        assert sorted(r.index for r in srv.requests) == list(range(8))


def test_invalid_json_body_is_a_400_in_the_protocols_error_shape(server: ScriptedLLMServer) -> None:
    with httpx.Client(base_url=server.base_url) as http:
        resp = http.post("/v1/chat/completions", content=b"{not json")
        assert resp.status_code == 400
        assert "message" in resp.json()["error"]
        resp = http.post("/v1/messages", content=b"[1, 2]")
        assert resp.status_code == 400
        assert resp.json()["type"] == "error"
    assert server.requests == []


def test_port_zero_picks_a_free_port_and_servers_are_independent() -> None:
    with ScriptedLLMServer() as a, ScriptedLLMServer() as b:
        assert a.port != b.port
        assert a.port > 0
        assert a.base_url == f"http://127.0.0.1:{a.port}"
        assert a.openai_base_url == f"{a.base_url}/v1"
    with pytest.raises(RuntimeError):
        _ = ScriptedLLMServer().port


def test_split_text_gives_several_deltas_that_join_back() -> None:
    for text in [
        "Done.",
        "Hi",
        "x",
        "two words",
        "one two three four five six seven",
        "  lead trail  ",
    ]:
        parts = split_text(text)
        assert "".join(parts) == text
        assert len(parts) >= min(3, len(text))
    assert split_text("") == []


# --------------------------------------------------------------------------- bad scripts


def test_script_file_is_loaded_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(TOOL_SCRIPT))
    script = load_script(path)
    assert isinstance(script, LLMScript)
    assert script.turns[0].tool_calls[0].args == {"command": "ls -a"}
    with ScriptedLLMServer(str(path)) as srv:
        assert len(srv.script.turns) == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"turns": [{"text": "a", "delay_ms": -5}]}', "turns[0].delay_ms"),
        ('{"turns": [{"tool_calls": [{"args": {}}]}]}', "turns[0].tool_calls[0].name"),
        ('{"turns": [{}]}', "a turn needs 'text', 'tool_calls' or both"),
        ('{"turns": [{"text": "a", "delay": 5}]}', "turns[0].delay"),
        ('{"turns": "nope"}', "turns"),
    ],
)
def test_bad_script_names_file_and_problem(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ScriptError) as info:
        ScriptedLLMServer(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)
    assert isinstance(info.value, OpenInspectError)
    assert isinstance(info.value, ValueError)


def test_missing_script_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(ScriptError, match=r"missing\.json"):
        load_script(path)
