"""The builtin agent's tools. Names and arguments are a public contract:

    bash {command, timeout_s?}   read {path, offset?, limit?}   write {path, content}
    edit {path, old, new}        glob {pattern}                 grep {pattern, path?}
    create_pull_request {title, body, draft?}

Each runs in the session's sandbox through the bridge. A tool waits for the sandbox to be ready,
so the model can start thinking while the sandbox boots. Every call produces a ``tool-call`` and a
``tool-result`` event with the full output; the model gets the output truncated. Failures the agent
must react to (non-zero exit, file not found, ambiguous edit) come back as results, not exceptions.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic_ai import RunContext, Tool

from openinspect.domain.events import Event, ToolCall, ToolResult
from openinspect.errors import OpenInspectError, RpcError, SandboxError
from openinspect.sandboxes.bridge import SandboxConnection

TOOL_NAMES = ("bash", "read", "write", "edit", "glob", "grep", "create_pull_request")


class ToolHost(Protocol):
    """What the tools need from the session that runs them."""

    async def sandbox(self) -> SandboxConnection:
        """The session's sandbox once it is ready. Raises ``SandboxError`` if it cannot boot."""
        ...

    async def emit(self, event: Event) -> None:
        """Append a durable event to the session log."""
        ...

    async def open_pull_request(self, title: str, body: str, draft: bool) -> str:
        """Commit and push the work so far, then open the session branch's pull request as the
        person who asked (or update the open one). Returns a one-line summary for the model;
        raises ``OpenInspectError`` with a message the model can act on."""
        ...


@dataclass
class ToolDeps:
    session_id: str
    prompt_id: str
    host: ToolHost
    output_limit_chars: int
    bash_timeout_s: float
    bash_max_timeout_s: float


@dataclass
class _Outcome:
    output: str
    is_error: bool = False
    exit_code: int | None = None


def truncate_for_model(text: str, limit: int) -> tuple[str, bool]:
    """Keep the head and tail of long output; the full text stays in the event."""
    if len(text) <= limit:
        return text, False
    head = limit * 2 // 3
    tail = limit - head
    dropped = len(text) - head - tail
    return f"{text[:head]}\n[… {dropped} characters truncated …]\n{text[-tail:]}", True


async def _run_tool(
    ctx: RunContext[ToolDeps],
    tool: str,
    args: dict[str, Any],
    body: Callable[[SandboxConnection], Awaitable[_Outcome]],
) -> str:
    deps = ctx.deps
    call_id = ctx.tool_call_id or f"{tool}-{time.monotonic_ns()}"
    common = {"session_id": deps.session_id, "prompt_id": deps.prompt_id}
    await deps.host.emit(ToolCall(**common, call_id=call_id, tool=tool, args=args))
    started = time.monotonic()
    try:
        outcome = await body(await deps.host.sandbox())
    except RpcError as exc:
        outcome = _Outcome(f"error [{exc.details.get('rpc_code', exc.code)}]: {exc.message}", True)
    except SandboxError as exc:
        outcome = _Outcome(f"error [{exc.code}]: {exc}", True)
    duration_ms = int((time.monotonic() - started) * 1000)
    for_model, truncated = truncate_for_model(outcome.output, deps.output_limit_chars)
    await deps.host.emit(
        ToolResult(
            **common,
            call_id=call_id,
            tool=tool,
            output=outcome.output,
            is_error=outcome.is_error,
            exit_code=outcome.exit_code,
            duration_ms=duration_ms,
            truncated_for_model=truncated,
        )
    )
    return for_model


async def bash(ctx: RunContext[ToolDeps], command: str, timeout_s: float | None = None) -> str:
    """Run a shell command in the repository (bash). Returns combined stdout/stderr and the
    exit code. `timeout_s` defaults to the server's limit; the process group is killed on timeout.
    """
    deps = ctx.deps
    limit = min(timeout_s or deps.bash_timeout_s, deps.bash_max_timeout_s)
    args: dict[str, Any] = {"command": command}
    if timeout_s is not None:
        args["timeout_s"] = timeout_s

    async def body(box: SandboxConnection) -> _Outcome:
        result = await box.exec(command, timeout_s=limit)
        output = result.stdout + (result.stderr if result.stderr else "")
        footer = f"[exit code {result.exit_code}]"
        if result.timed_out:
            footer = f"[timed out after {limit:g} s; process group killed]"
        text = f"{output}{'' if not output or output.endswith(chr(10)) else chr(10)}{footer}"
        return _Outcome(text, result.exit_code != 0 or result.timed_out, result.exit_code)

    return await _run_tool(ctx, "bash", args, body)


async def read(
    ctx: RunContext[ToolDeps], path: str, offset: int | None = None, limit: int | None = None
) -> str:
    """Read a text file. `offset` is the first line (1-based), `limit` the number of lines."""
    args: dict[str, Any] = {"path": path}
    if offset is not None:
        args["offset"] = offset
    if limit is not None:
        args["limit"] = limit

    async def body(box: SandboxConnection) -> _Outcome:
        result = await box.read_file(path, offset=offset, limit=limit)
        note = (
            f"\n[file has {result['total_lines']} lines; output truncated]"
            if result["truncated"]
            else ""
        )
        return _Outcome(result["content"] + note)

    return await _run_tool(ctx, "read", args, body)


async def write(ctx: RunContext[ToolDeps], path: str, content: str) -> str:
    """Create or overwrite a file with `content` (parent directories are created)."""

    async def body(box: SandboxConnection) -> _Outcome:
        await box.write_file(path, content)
        return _Outcome(f"Wrote {len(content)} characters to {path}")

    return await _run_tool(ctx, "write", {"path": path, "content": content}, body)


async def edit(ctx: RunContext[ToolDeps], path: str, old: str, new: str) -> str:
    """Replace the one occurrence of `old` in a file with `new`. Fails if `old` is missing or
    occurs more than once (add surrounding lines to make it unique)."""

    async def body(box: SandboxConnection) -> _Outcome:
        await box.edit_file(path, old, new)
        return _Outcome(f"Edited {path}")

    return await _run_tool(ctx, "edit", {"path": path, "old": old, "new": new}, body)


async def glob(ctx: RunContext[ToolDeps], pattern: str) -> str:
    """List files matching a glob pattern (e.g. `src/**/*.py`), relative to the repository."""

    async def body(box: SandboxConnection) -> _Outcome:
        result = await box.glob(pattern)
        text = "\n".join(result["paths"]) if result["paths"] else "(no matches)"
        return _Outcome(text + ("\n[more matches not shown]" if result["truncated"] else ""))

    return await _run_tool(ctx, "glob", {"pattern": pattern}, body)


async def grep(ctx: RunContext[ToolDeps], pattern: str, path: str | None = None) -> str:
    """Search file contents with a regular expression; prints `path:line:text` per match."""
    args: dict[str, Any] = {"pattern": pattern}
    if path is not None:
        args["path"] = path

    async def body(box: SandboxConnection) -> _Outcome:
        result = await box.grep(pattern, path=path)
        text = "\n".join(result["matches"]) if result["matches"] else "(no matches)"
        return _Outcome(text + ("\n[more matches not shown]" if result["truncated"] else ""))

    return await _run_tool(ctx, "grep", args, body)


async def create_pull_request(
    ctx: RunContext[ToolDeps], title: str, body: str, draft: bool = False
) -> str:
    """Open a pull request from this session's branch into its base branch, authored by the
    person who asked; calling it again updates the title and body of the open pull request.
    Your changes so far are committed and pushed first. `body` is Markdown: say what changed and
    how it was tested."""
    args: dict[str, Any] = {"title": title, "body": body, "draft": draft}

    async def run(box: SandboxConnection) -> _Outcome:
        try:
            return _Outcome(await ctx.deps.host.open_pull_request(title, body, draft))
        except SandboxError:
            raise
        except OpenInspectError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            return _Outcome(f"error [{exc.code}]: {exc.message}{hint}", True)

    return await _run_tool(ctx, "create_pull_request", args, run)


def builtin_tools() -> list[Tool[ToolDeps]]:
    return [
        Tool(fn, takes_ctx=True)
        for fn in (bash, read, write, edit, glob, grep, create_pull_request)
    ]
