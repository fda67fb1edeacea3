"""MCP tools: the tools of the MCP servers configured for the session's repo, for one prompt.

At the start of a prompt the control plane opens every enabled server of the repo (the global
ones and the repo's, the repo's winning by name; ``store.mcp_servers``) with the official MCP
SDK's ``ClientSession``, lists its tools, and gives each to the agent as ``<server>__<tool>``
(the tool allow-list, when set, picks which). A call records a ``tool-call`` and a
``tool-result`` event and its output is cut for the model and the event like any tool's
(:func:`openinspect.agent.tools._record`). A server that cannot be opened within the connect
timeout is a ``warning`` event (``mcp_server_unavailable``) and the prompt goes on without it.

- **http** (streamable HTTP): the control plane is the client, sending the server's headers
  (its credential) itself; they are opened from the store for this prompt, redacted from the
  session's events and logs, and never reach the box.
- **stdio**: the server runs *inside the box*, started through the bridge's ``pipe`` method
  (``runtime.executor``): its stdin is fed by ``input`` messages and its stdout streamed back as
  chunks, which are cut into lines here and parsed as JSON-RPC before the SDK sees them. It gets
  the box's environment and no credential. Nothing it says is trusted: a message over
  :data:`MAX_STDIO_MESSAGE_CHARS`, a line that is not JSON-RPC, or more messages queued than are
  read (:data:`MAX_QUEUED_MESSAGES`) stops it at once, and every call has the call timeout.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from mcp import ClientSession, types
from mcp.shared.message import SessionMessage
from pydantic_ai import RunContext, Tool
from pydantic_ai.toolsets import FunctionToolset

from openinspect.agent.tools import ToolDeps, _Outcome, _record, shown_args
from openinspect.domain.events import ToolCall
from openinspect.sandboxes.connection import SandboxConnection
from openinspect.store.mcp_servers import McpServer
from openinspect.timeouts import wait_for

log = logging.getLogger(__name__)

MAX_STDIO_MESSAGE_CHARS = 1_000_000
"""Longest line (one JSON-RPC message) an in-box server may send."""
MAX_QUEUED_MESSAGES = 64
"""Messages from an in-box server waiting to be read; past it the server is stopped."""
STDERR_KEPT_CHARS = 1000
"""The end of an in-box server's stderr, said when it fails."""
MAX_TOOLS_PER_SERVER = 64
MAX_DESCRIPTION_CHARS = 2000
MAX_SCHEMA_CHARS = 32_000
"""A tool whose input schema is larger is left out (with a warning)."""
TOOL_NAME_MAX = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

Warn = Callable[[str, str], Awaitable[None]]
"""``(code, message)``: a warning event of the prompt."""


def tool_name(server: str, tool: str) -> str:
    """The agent's name of ``tool`` of ``server``: ``<server>__<tool>``, with characters model
    APIs refuse made ``_`` and cut to 64."""
    return f"{server}__{_UNSAFE.sub('_', tool)}"[:TOOL_NAME_MAX]


@dataclass
class _Failure:
    """Why an in-box server was stopped (None while it is fine)."""

    reason: str | None = None


@contextlib.asynccontextmanager
async def box_stdio(
    box: SandboxConnection, argv: Sequence[str], *, timeout_s: float, failure: _Failure
) -> AsyncIterator[tuple[Any, Any]]:
    """The SDK's stream pair over a process in the box: what ``mcp.client.stdio`` gives for a
    local process, fed by the bridge (see the module's docstring for the limits)."""
    read_in, read_out = anyio.create_memory_object_stream[SessionMessage | Exception](
        MAX_QUEUED_MESSAGES
    )
    write_in, write_out = anyio.create_memory_object_stream[SessionMessage](MAX_QUEUED_MESSAGES)
    pending: list[str] = []
    pending_chars = 0
    stderr: collections.deque[str] = collections.deque()
    stderr_chars = 0

    def stop(reason: str) -> None:
        if failure.reason is None:
            failure.reason = reason
        pipe.done.cancel()
        read_in.close()

    async def on_output(stream: str, data: str) -> None:
        nonlocal pending_chars, stderr_chars
        if stream == "stderr":
            stderr.append(data)
            stderr_chars += len(data)
            while stderr_chars - len(stderr[0]) > STDERR_KEPT_CHARS:
                stderr_chars -= len(stderr.popleft())
            return
        if failure.reason is not None:
            return
        *lines, rest = data.split("\n")
        if lines:
            lines[0] = "".join(pending) + lines[0]
            pending.clear()
            pending_chars = 0
        pending.append(rest)
        pending_chars += len(rest)
        for line in lines:
            if len(line) > MAX_STDIO_MESSAGE_CHARS:
                stop(f"sent a message over {MAX_STDIO_MESSAGE_CHARS:,} characters")
                return
            if not line.strip():
                continue
            try:
                message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
            except ValueError:
                stop("sent a line that is not a JSON-RPC message")
                return
            try:
                read_in.send_nowait(SessionMessage(message))
            except anyio.WouldBlock:
                stop(f"sent more than {MAX_QUEUED_MESSAGES} messages that were not read")
                return
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
        if pending_chars > MAX_STDIO_MESSAGE_CHARS:
            stop(f"sent a message over {MAX_STDIO_MESSAGE_CHARS:,} characters")

    pipe = box.pipe(list(argv), timeout_s=timeout_s, on_output=on_output)

    async def writer() -> None:
        async with write_out:
            async for message in write_out:
                text = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                await pipe.write(text + "\n")

    async def watch() -> None:
        try:
            result = await pipe.done
            if failure.reason is None:
                failure.reason = f"exited with code {result['exit_code']}"
        except BaseException as exc:  # lost box, cancelled by stop()
            if failure.reason is None:
                failure.reason = f"stopped ({exc.__class__.__name__})"
        finally:
            if failure.reason and failure.reason.startswith("exited") and stderr:
                failure.reason += f"; its stderr ended with: {''.join(stderr)[-300:]!r}"
            read_in.close()

    async with anyio.create_task_group() as group:
        group.start_soon(writer)
        group.start_soon(watch)
        try:
            yield read_out, write_in
        finally:
            pipe.done.cancel()
            group.cancel_scope.cancel()


@dataclass
class _Open:
    server: McpServer
    session: ClientSession
    failure: _Failure


async def _open_one(
    stack: contextlib.AsyncExitStack,
    server: McpServer,
    box: SandboxConnection | None,
    failure: _Failure,
    *,
    call_timeout_s: float,
    life_s: float,
) -> tuple[_Open, list[types.Tool]]:
    if server.transport == "http":
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        assert server.url is not None
        client = await stack.enter_async_context(
            create_mcp_http_client(headers=dict(server.headers))
        )
        read, write = await stack.enter_async_context(
            streamable_http_client(server.url, http_client=client)
        )
    else:
        assert server.command is not None
        assert box is not None
        read, write = await stack.enter_async_context(
            box_stdio(box, server.command, timeout_s=life_s, failure=failure)
        )
    session = await stack.enter_async_context(
        ClientSession(read, write, read_timeout_seconds=call_timeout_s)
    )
    await session.initialize()
    listed = await session.list_tools()
    return _Open(server, session, failure), list(listed.tools)


class _Opening(Exception):
    """Why a server's task ended before its session was open."""


async def _serve(
    server: McpServer,
    box: Callable[[], Awaitable[SandboxConnection]],
    failure: _Failure,
    ready: asyncio.Future[tuple[_Open, list[types.Tool]]],
    connecting: asyncio.Event,
    closing: asyncio.Event,
    *,
    call_timeout_s: float,
    life_s: float,
) -> None:
    """One server's connection, in a task of its own: the SDK's task groups are entered and
    left in the same task, whatever the prompt's task does meanwhile."""
    try:
        # The connect timeout starts once the box is up: an in-box server waits for it.
        sandbox = await box() if server.transport == "stdio" else None
        connecting.set()
        async with contextlib.AsyncExitStack() as stack:
            opened = await _open_one(
                stack, server, sandbox, failure, call_timeout_s=call_timeout_s, life_s=life_s
            )
            ready.set_result(opened)
            await closing.wait()
    except asyncio.CancelledError:
        if not ready.done():
            ready.set_exception(_Opening("cancelled"))
        raise
    except BaseException as exc:
        if not ready.done():
            ready.set_exception(_Opening(_reason(exc, failure)))
        else:
            log.debug("the MCP server %s ended", server.name, exc_info=True)


def _reason(exc: BaseException, failure: _Failure) -> str:
    if failure.reason is not None:
        return f"the server {failure.reason}"
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc) or exc.__class__.__name__
    return text[:300]


def _text_of(result: types.CallToolResult) -> str:
    parts: list[str] = []
    for item in result.content:
        if isinstance(item, types.TextContent):
            parts.append(item.text)
        else:
            parts.append(f"[{item.type} content not shown]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def _without_credentials(text: str, server: McpServer) -> str:
    """``text`` with the server's header values named instead, as the session's redaction
    names them: a server that says its credential back does not hand it to the model."""
    for header, value in server.headers.items():
        if value:
            text = text.replace(value, f"[secret:MCP_{server.name}_{header}]")
            token = value.partition(" ")[2]  # "Bearer <token>": the token alone too
            if len(token) >= 8:
                text = text.replace(token, f"[secret:MCP_{server.name}_{header}]")
    return text


def _tool(opened: _Open, tool: types.Tool, name: str, call_timeout_s: float) -> Tool[ToolDeps]:
    async def call(ctx: RunContext[ToolDeps], **args: Any) -> str:
        deps = ctx.deps
        call_id = ctx.tool_call_id or f"{name}-{time.monotonic_ns()}"
        common = {"session_id": deps.session_id, "prompt_id": deps.prompt_id}
        shown = shown_args(args, deps.event_limit_chars)
        await deps.host.emit(ToolCall(**common, call_id=call_id, tool=name, args=shown))
        started = time.monotonic()
        try:
            result = await wait_for(
                opened.session.call_tool(tool.name, args, read_timeout_seconds=call_timeout_s),
                call_timeout_s + 5,
            )
            outcome = _Outcome(_text_of(result), bool(result.is_error))
        except Exception as exc:  # a server's failure is the agent's to read, not the run's
            why = _reason(exc, opened.failure)
            if isinstance(exc, TimeoutError) or "timed out" in why.lower():
                why = f"no answer within {call_timeout_s:g} s"
            outcome = _Outcome(
                f"error [mcp_call_failed]: the MCP server {opened.server.name} failed: {why}",
                True,
            )
        if isinstance(outcome.output, str):
            outcome.output = _without_credentials(outcome.output, opened.server)
        return await _record(deps, call_id, name, outcome, time.monotonic() - started)

    description = (tool.description or f"{tool.name} of the MCP server {opened.server.name}")[
        :MAX_DESCRIPTION_CHARS
    ]
    schema = dict(tool.input_schema) or {"type": "object", "properties": {}}
    return Tool.from_schema(call, name, description, schema, takes_ctx=True)


@contextlib.asynccontextmanager
async def mcp_toolsets(
    servers: Sequence[McpServer],
    box: Callable[[], Awaitable[SandboxConnection]],
    warn: Warn,
    *,
    connect_timeout_s: float,
    call_timeout_s: float,
    life_s: float,
    taken: frozenset[str] = frozenset(),
) -> AsyncIterator[list[FunctionToolset[ToolDeps]]]:
    """Open ``servers`` for one prompt, all at once (``box``: the session's sandbox, for stdio
    servers; ``life_s``: how long an in-box server may run) and yield their tools as one
    toolset; every server is closed on exit. ``taken``: tool names already in use."""
    if not servers:
        yield []
        return
    loop = asyncio.get_running_loop()
    closing = asyncio.Event()
    started: list[
        tuple[McpServer, _Failure, asyncio.Future[Any], asyncio.Event, asyncio.Task[None]]
    ] = []
    for server in servers:
        failure = _Failure()
        ready: asyncio.Future[tuple[_Open, list[types.Tool]]] = loop.create_future()
        connecting = asyncio.Event()
        task = asyncio.create_task(
            _serve(
                server,
                box,
                failure,
                ready,
                connecting,
                closing,
                call_timeout_s=call_timeout_s,
                life_s=life_s,
            ),
            name=f"mcp {server.name}",
        )
        started.append((server, failure, ready, connecting, task))
    try:
        tools: list[Tool[ToolDeps]] = []
        names = set(taken)
        for server, failure, ready, connecting, task in started:
            try:
                box_up: asyncio.Future[Any] = asyncio.ensure_future(connecting.wait())
                await asyncio.wait(
                    [box_up, asyncio.shield(ready)], timeout=life_s, return_when="FIRST_COMPLETED"
                )
                box_up.cancel()
                opened, listed = await wait_for(asyncio.shield(ready), connect_timeout_s)
            except (_Opening, TimeoutError) as exc:
                task.cancel()
                why = str(exc) if isinstance(exc, _Opening) else "no answer in time"
                if failure.reason is not None:
                    why = f"the server {failure.reason}"
                await warn(
                    "mcp_server_unavailable",
                    f"The MCP server {server.name} could not be opened ({why}); "
                    "this prompt goes on without its tools",
                )
                continue
            tools.extend(await _tools_of(opened, listed, names, warn, call_timeout_s))
        yield [FunctionToolset(tools)] if tools else []
    finally:
        closing.set()
        tasks = [task for *_, task in started]
        with contextlib.suppress(TimeoutError):
            await wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _tools_of(
    opened: _Open, listed: list[types.Tool], names: set[str], warn: Warn, call_timeout_s: float
) -> list[Tool[ToolDeps]]:
    server = opened.server
    allowed = set(server.tools) if server.tools is not None else None
    tools: list[Tool[ToolDeps]] = []
    for tool in listed:
        if allowed is not None and tool.name not in allowed:
            continue
        name = tool_name(server.name, tool.name)
        if name in names or len(tools) >= MAX_TOOLS_PER_SERVER:
            continue
        if len(json.dumps(tool.input_schema)) > MAX_SCHEMA_CHARS:
            await warn(
                "mcp_tool_skipped",
                f"The tool {name} was left out: its input schema is over "
                f"{MAX_SCHEMA_CHARS:,} characters",
            )
            continue
        names.add(name)
        tools.append(_tool(opened, tool, name, call_timeout_s))
    return tools
