"""A scripted LLM server speaking the real OpenAI Chat Completions and Anthropic Messages protocols.

It is the only "model" the tests and the offline demo talk to. Real clients (the ``openai`` and
``anthropic`` SDKs, and pydantic-ai's models on top of them) point their base URL at it and work
unchanged, over real HTTP, streaming or not, tool calls included. Each model request, whatever the
protocol, answers with the next turn of a JSON script::

    {"turns": [
      {"text": "Let me look.", "tool_calls": [{"name": "bash", "args": {"command": "ls"}}]},
      {"text": "Done.", "delay_ms": 200}
    ]}

When the turns run out it answers with ``final_text`` and no tool calls, so an agent loop ends.
A request carrying the ``x-openinspect-replay-key`` header (openinspect sends the session id) has
its own position in the script, so every session replays the script from its first turn; requests
without it share one position.
Every model request is recorded (body, path, protocol, headers without secrets, arrival time) and
can be read from Python (``server.requests``) or over HTTP (``GET /_scripted/requests``).

In-process use (sync or async code alike; the server has its own thread and event loop)::

    with ScriptedLLMServer("script.json") as srv:
        client = openai.OpenAI(base_url=srv.openai_base_url, api_key="x")
        ...
        srv.wait_for_requests(2)
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, Self, TypeAlias

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from openinspect.errors import ConfigError
from openinspect.testing._llm_wire import (
    Protocol,
    WireReply,
    WireToolCall,
    anthropic_error,
    anthropic_message,
    anthropic_stream,
    estimate_tokens,
    openai_completion,
    openai_error,
    openai_stream,
)
from openinspect.testing.background import BackgroundServer, bind, url_host

__all__ = [
    "DEFAULT_FINAL_TEXT",
    "REPLAY_HEADER",
    "LLMScript",
    "RecordedRequest",
    "ScriptError",
    "ScriptSource",
    "ScriptedLLMServer",
    "ScriptedToolCall",
    "ScriptedTurn",
    "load_script",
    "serve",
]

DEFAULT_FINAL_TEXT = "Scripted model: no more turns."
REPLAY_HEADER = "x-openinspect-replay-key"
REPLAY_KEYS_MAX = 10_000
"""Script positions remembered; past it the longest-unused key starts over (bounded memory)."""

# Never recorded: a request log must be safe to print or store in a benchmark result.
_SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie"}
)
_AUTH_HEADERS = ("authorization", "x-api-key", "api-key")


class ScriptError(ConfigError, ValueError):
    """The LLM script cannot be read or is invalid; the message names the file and the problem."""


class ScriptedToolCall(BaseModel):
    """A tool call the scripted model makes; the server assigns the call id."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class ScriptedTurn(BaseModel):
    """One model response: text, tool calls or both, optionally after a delay."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    thinking: str | None = None
    """Sent as an Anthropic thinking block; OpenAI Chat Completions has no field for it."""
    delay_ms: int = Field(default=0, ge=0)
    """Sleep before the response starts, to simulate model latency."""
    chunk_delay_ms: int = Field(default=0, ge=0)
    """Sleep between streamed chunks, so a live UI visibly receives text in pieces."""
    input_tokens: int | None = Field(default=None, ge=0, le=100_000_000)
    """The prompt tokens the response reports (default: estimated from the request's size), so a
    test can give a response a known cost (tokens times the model's price)."""

    @model_validator(mode="after")
    def _says_something(self) -> Self:
        if not self.text and not self.tool_calls:
            raise ValueError("a turn needs 'text', 'tool_calls' or both")
        return self


class LLMScript(BaseModel):
    """The whole script: turns answered in order, then ``final_text`` forever."""

    model_config = ConfigDict(extra="forbid")

    turns: list[ScriptedTurn] = Field(default_factory=list)
    final_text: str = Field(default=DEFAULT_FINAL_TEXT, min_length=1)
    models: list[str] | None = None
    """The model ids ``GET /v1/models`` lists; None: that route answers 404, as a server that
    cannot list its models."""


ScriptSource: TypeAlias = LLMScript | Mapping[str, Any] | str | os.PathLike[str]
"""Where a script comes from: a JSON file path, an already parsed mapping, or an ``LLMScript``."""


class RecordedRequest(BaseModel):
    """One model request the server received."""

    model_config = ConfigDict(frozen=True)

    index: int
    """0-based arrival order since the last reset."""
    protocol: Protocol
    path: str
    query: str
    body: dict[str, Any]
    headers: dict[str, str]
    """Request headers, lower-cased, without any credential header."""
    has_auth: bool
    """Whether an API key header (``Authorization``/``x-api-key``) was present."""
    stream: bool
    turn: int | None
    """Index of the script turn that answered it, or None once the turns had run out."""
    received_at: float
    """``time.time()`` when the request arrived."""


def _describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        problems.append(f"{loc or '<root>'}: {err['msg']}")
    return "; ".join(problems)


def _validate(data: object, origin: str) -> LLMScript:
    try:
        return LLMScript.model_validate(data)
    except ValidationError as exc:
        raise ScriptError(
            f"invalid LLM script {origin}: {_describe_validation_error(exc)}",
            hint=(
                'expected {"turns": [{"text": "...", '
                '"tool_calls": [{"name": "...", "args": {}}], "delay_ms": 0}]}'
            ),
        ) from exc


def load_script(source: ScriptSource) -> LLMScript:
    """Load and validate a script from a file path, a parsed mapping, or an ``LLMScript``.

    Raises ``ScriptError`` naming the file and the problem (missing file, bad JSON, bad shape).
    """
    if isinstance(source, LLMScript):
        return source
    if isinstance(source, Mapping):
        return _validate(dict(source), "<inline script>")
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(
            f"cannot read LLM script {path}: {exc.strerror or exc}",
            hint="pass the path of a JSON script file",
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScriptError(
            f"LLM script {path} is not valid JSON: {exc.msg} "
            f"at line {exc.lineno} column {exc.colno}"
        ) from exc
    return _validate(data, str(path))


class _Answer:
    """What one request gets: the reply to render and how to pace it."""

    __slots__ = ("chunk_delay_s", "delay_s", "reply")

    def __init__(self, reply: WireReply, delay_s: float, chunk_delay_s: float) -> None:
        self.reply = reply
        self.delay_s = delay_s
        self.chunk_delay_s = chunk_delay_s


class _ScriptState:
    """Script position and request log, shared by the server thread and the caller's threads."""

    def __init__(self, script: LLMScript) -> None:
        self._cond = threading.Condition()
        self._script = script
        self._positions: OrderedDict[str, int] = OrderedDict()
        self._records: list[RecordedRequest] = []
        self._call_counter = 0

    @property
    def script(self) -> LLMScript:
        with self._cond:
            return self._script

    @property
    def turns_used(self) -> int:
        with self._cond:
            return sum(self._positions.values())

    def records(self) -> list[RecordedRequest]:
        with self._cond:
            return list(self._records)

    def reset(self, script: LLMScript | None) -> None:
        with self._cond:
            if script is not None:
                self._script = script
            self._positions.clear()
            self._records = []
            self._call_counter = 0
            self._cond.notify_all()

    def wait_for(self, n: int, timeout_s: float) -> list[RecordedRequest]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._records) >= n, timeout=timeout_s):
                raise TimeoutError(
                    f"scripted LLM server got {len(self._records)} request(s), "
                    f"expected {n} within {timeout_s}s"
                )
            return list(self._records)

    def take_turn(
        self,
        *,
        protocol: Protocol,
        request: Request,
        body: dict[str, Any],
        raw_len: int,
        received_at: float,
    ) -> _Answer:
        """Record the request and pick its turn under one lock, so no two requests share a turn."""
        headers = {k: v for k, v in request.headers.items() if k not in _SECRET_HEADERS}
        key = request.headers.get(REPLAY_HEADER, "")
        with self._cond:
            turn_index: int | None = None
            turn: ScriptedTurn | None = None
            position = self._positions.pop(key, 0)
            if position < len(self._script.turns):
                turn_index = position
                turn = self._script.turns[turn_index]
                position += 1
            self._positions[key] = position  # most recently used last
            if len(self._positions) > REPLAY_KEYS_MAX:
                self._positions.popitem(last=False)
            number = len(self._records) + 1
            calls: list[WireToolCall] = []
            for call in turn.tool_calls if turn else []:
                self._call_counter += 1
                prefix = "call_" if protocol == "openai" else "toolu_"
                calls.append(WireToolCall(f"{prefix}{self._call_counter}", call.name, call.args))
            self._records.append(
                RecordedRequest(
                    index=number - 1,
                    protocol=protocol,
                    path=request.url.path,
                    query=request.url.query,
                    body=body,
                    headers=headers,
                    has_auth=any(h in request.headers for h in _AUTH_HEADERS),
                    stream=body.get("stream") is True,
                    turn=turn_index,
                    received_at=received_at,
                )
            )
            self._cond.notify_all()
            final_text = self._script.final_text
        model = body.get("model")
        reply = WireReply(
            response_id=(
                f"chatcmpl-scripted-{number}" if protocol == "openai" else f"msg_scripted_{number}"
            ),
            model=model if isinstance(model, str) and model else "scripted",
            text=(turn.text or "") if turn else final_text,
            thinking=turn.thinking if turn else None,
            tool_calls=tuple(calls),
            input_tokens=(
                turn.input_tokens
                if turn is not None and turn.input_tokens is not None
                else estimate_tokens(raw_len)
            ),
        )
        delay_s = turn.delay_ms / 1000 if turn else 0.0
        chunk_delay_s = turn.chunk_delay_ms / 1000 if turn else 0.0
        return _Answer(reply, delay_s, chunk_delay_s)


async def _paced(chunks: Iterator[bytes], delay_s: float) -> AsyncIterator[bytes]:
    first = True
    for chunk in chunks:
        if delay_s and not first:
            await asyncio.sleep(delay_s)
        first = False
        yield chunk


def _build_app(state: _ScriptState) -> Starlette:
    async def answer(request: Request, protocol: Protocol) -> Response:
        received_at = time.time()
        raw = await request.body()
        error = openai_error if protocol == "openai" else anthropic_error
        try:
            body = json.loads(raw)
        except ValueError:
            return JSONResponse(error("request body is not valid JSON"), status_code=400)
        if not isinstance(body, dict):
            return JSONResponse(error("request body must be a JSON object"), status_code=400)
        ans = state.take_turn(
            protocol=protocol,
            request=request,
            body=body,
            raw_len=len(raw),
            received_at=received_at,
        )
        if ans.delay_s:
            await asyncio.sleep(ans.delay_s)
        reply = ans.reply
        id_header = "x-request-id" if protocol == "openai" else "request-id"
        headers = {id_header: f"req_{reply.response_id}"}
        if body.get("stream") is not True:
            payload = openai_completion(reply) if protocol == "openai" else anthropic_message(reply)
            return JSONResponse(payload, headers=headers)
        if protocol == "openai":
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            chunks = openai_stream(reply, include_usage=include_usage)
        else:
            chunks = anthropic_stream(reply)
        return StreamingResponse(
            _paced(chunks, ans.chunk_delay_s),
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )

    async def chat_completions(request: Request) -> Response:
        return await answer(request, "openai")

    async def messages(request: Request) -> Response:
        return await answer(request, "anthropic")

    async def list_models(request: Request) -> Response:
        models = state.script.models
        if models is None:
            return JSONResponse(
                openai_error("this server does not list its models"), status_code=404
            )
        return JSONResponse(
            {"object": "list", "data": [{"id": m, "object": "model"} for m in models]}
        )

    async def list_requests(request: Request) -> Response:
        return JSONResponse([r.model_dump(mode="json") for r in state.records()])

    async def reset(request: Request) -> Response:
        raw = await request.body()
        script: LLMScript | None = None
        if raw.strip():
            try:
                data = json.loads(raw)
                if not isinstance(data, dict):
                    raise ScriptError("the reset body must be a JSON object (a script) or empty")
                script = load_script(data)
            except ValueError as exc:  # ScriptError is a ValueError too
                return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        state.reset(script)
        return JSONResponse({"ok": True, "turns": len(state.script.turns)})

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "ok": True,
                "turns": len(state.script.turns),
                "turns_used": state.turns_used,
            }
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            # Clients configured without the /v1 suffix still reach the same handler.
            Route("/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/models", list_models, methods=["GET"]),
            Route("/_scripted/requests", list_requests, methods=["GET"]),
            Route("/_scripted/reset", reset, methods=["POST"]),
            Route("/_scripted/health", health, methods=["GET"]),
        ]
    )


class ScriptedLLMServer(BackgroundServer):
    """The scripted LLM server, run in a background thread with its own event loop.

    ``ScriptedLLMServer(script, host="127.0.0.1", port=0)``; ``script`` is a path to a JSON
    script, a parsed mapping, an ``LLMScript``, or None (every request gets ``final_text``). Use it
    as a (sync or async) context manager, or call ``start()``/``stop()``. ``base_url`` is the
    Anthropic SDK's base URL.
    """

    label = "scripted LLM server"

    def __init__(
        self,
        script: ScriptSource | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self._state = _ScriptState(load_script(script) if script is not None else LLMScript())
        self._app = _build_app(self._state)

    def _asgi_app(self) -> Starlette:
        return self._app

    # ------------------------------------------------------------------ addresses

    @property
    def openai_base_url(self) -> str:
        """``http://HOST:PORT/v1``: the OpenAI SDK's ``base_url``."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Same as ``base_url``; the Anthropic SDK appends ``/v1/messages`` itself."""
        return self.base_url

    @property
    def app(self) -> Starlette:
        """The ASGI app, e.g. for ``httpx.ASGITransport`` without a socket."""
        return self._app

    # ------------------------------------------------------------------ script and records

    @property
    def script(self) -> LLMScript:
        """The script being replayed."""
        return self._state.script

    @property
    def turns_used(self) -> int:
        """How many script turns have been answered since the last reset."""
        return self._state.turns_used

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the model requests received since the last reset, in arrival order."""
        return self._state.records()

    def reset(self, script: ScriptSource | None = None) -> None:
        """Rewind to the first turn and forget the recorded requests; optionally swap the script."""
        self._state.reset(load_script(script) if script is not None else None)

    def wait_for_requests(self, n: int, timeout_s: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``n`` requests were recorded; return them. Raises ``TimeoutError``.

        From async code use ``wait_for_requests_async``: blocking the loop that runs the client
        would keep the awaited request from ever being sent.
        """
        return self._state.wait_for(n, timeout_s)

    async def wait_for_requests_async(
        self, n: int, timeout_s: float = 5.0
    ) -> list[RecordedRequest]:
        """Async ``wait_for_requests`` that keeps the caller's event loop running."""
        deadline = time.monotonic() + timeout_s
        while True:
            records = self._state.records()
            if len(records) >= n:
                return records
            if time.monotonic() >= deadline:
                return self._state.wait_for(n, 0)
            await asyncio.sleep(0.005)


def serve(
    script_path: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    log_level: str = "info",
) -> None:
    """Run the scripted LLM server in the foreground until interrupted (Ctrl+C / SIGTERM).

    Loads the script first (raising ``ScriptError`` before anything binds), then prints the base
    URLs to point clients at.
    """
    script = load_script(script_path)
    state = _ScriptState(script)
    sock = bind(host, port)
    base_url = f"http://{url_host(host)}:{sock.getsockname()[1]}"
    print(
        f"Scripted LLM server: {len(script.turns)} turn(s) from {script_path}",
        flush=True,
    )
    print(f"  OpenAI base URL:    {base_url}/v1", flush=True)
    print(f"  Anthropic base URL: {base_url}", flush=True)
    print(f"  Recorded requests:  {base_url}/_scripted/requests", flush=True)
    config = uvicorn.Config(_build_app(state), log_level=log_level, lifespan="off", loop="asyncio")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
