"""The builtin agent's tools. Names and arguments are a public contract:

    bash {command, timeout_s?}   read {path, offset?, limit?}   write {path, content}
    edit {path, old, new}        glob {pattern}                 grep {pattern, path?}
    create_pull_request {title, body, draft?}                   notify {text, channel?}
    load_skill {name}

Each runs in the session's sandbox through the bridge, except ``create_pull_request``,
``notify`` and ``load_skill``, which the control plane runs (``notify`` posts to Slack: the
session's thread, or ``channel`` when it is one of ``slack.notify_channels``; the box never
sees a Slack token; ``load_skill`` returns a managed skill's body). A
tool waits for the sandbox to be ready, so the model can start thinking while the sandbox
boots. Every call produces a ``tool-call`` and a ``tool-result`` event. Failures the agent must
react to (non-zero exit, file not found, ambiguous edit) come back as results, not exceptions.

Output is cut twice from one bounded capture (:class:`~openinspect.sandboxes.capture.
OutputCapture`; a command's output is streamed into it, never held whole): the event keeps
``event_limit_chars`` (half from the start, half from the end), the model ``output_limit_chars``
(two thirds from the start, one third from the end: the tail is where test summaries are). Each
cut copy carries a line in place of what it left out, e.g.
``[… 187,234,112 bytes (2,345,678 lines) omitted …]``, counting everything missing from it.
``bash`` interleaves stdout and stderr in the order they arrived. A ``tool-call`` event's
arguments are a display copy bounded the same way (:func:`shown_args`): the model's arguments
(a file's content, a review) can be as large as its output allows.

While ``bash`` runs, its output also reaches people live as ephemeral ``tool-output-delta`` events
(:mod:`openinspect.agent.live_output`). A call cut short by a stop still gets its ``tool-result``
(``stopped``), with what the command printed until then.

The first call that reaches the box reads the repo's root ``AGENTS.md``/``CLAUDE.md`` if the
prompt start could not; ``read``, ``write`` and ``edit`` append the instructions of a directory
below the root the first time they touch it (:mod:`openinspect.agent.guidance`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic_ai import RunContext, Tool

from openinspect.agent.guidance import Guidance
from openinspect.agent.live_output import LiveOutput, RateBudget
from openinspect.domain.events import Event, ToolCall, ToolResult
from openinspect.errors import OpenInspectError, RpcError, SandboxError
from openinspect.sandboxes.bridge import SandboxConnection
from openinspect.sandboxes.capture import OutputCapture
from openinspect.settings import (
    DEFAULT_LIVE_OUTPUT_CHARS_PER_S,
    DEFAULT_LIVE_OUTPUT_INTERVAL_MS,
    DEFAULT_TOOL_EVENT_OUTPUT_CHARS,
)

STOPPED_RESULT_TIMEOUT_S = 5.0
"""How long a stopped call may take to record its result before the stop goes on without it."""

TOOL_NAMES = (
    "bash",
    "read",
    "write",
    "edit",
    "glob",
    "grep",
    "create_pull_request",
    "notify",
    "submit_review",
    "load_skill",
)


class ToolHost(Protocol):
    """What the tools need from the session that runs them."""

    async def sandbox(self) -> SandboxConnection:
        """The session's sandbox once it is ready. Raises ``SandboxError`` if it cannot boot."""
        ...

    async def emit(self, event: Event) -> None:
        """Append a durable event to the session log."""
        ...

    async def publish(self, event: Event) -> None:
        """Publish an ephemeral event (not stored) to the session's watchers."""
        ...

    async def open_pull_request(self, title: str, body: str, draft: bool) -> str:
        """Commit and push the work so far, then open the session branch's pull request as the
        person who asked (or update the open one). Returns a one-line summary for the model;
        raises ``OpenInspectError`` with a message the model can act on."""
        ...

    async def notify(self, text: str, channel: str | None) -> str:
        """Record a ``notify`` event for Slack (the session's thread, or ``channel``). Returns a
        one-line summary for the model; raises ``OpenInspectError`` (Slack off, no thread and no
        allowed channel, a channel not allowed, text too long) with a message it can act on."""
        ...

    async def submit_review(self, review: dict[str, Any]) -> str:
        """Check a review of the session's pull request against its diff and post it once as
        the App (comments outside the diff go into its body). Returns a one-line summary;
        raises ``OpenInspectError`` (not a review session, an invalid review)."""
        ...


@dataclass
class ToolDeps:
    session_id: str
    prompt_id: str
    host: ToolHost
    output_limit_chars: int
    bash_timeout_s: float
    bash_max_timeout_s: float
    event_limit_chars: int = DEFAULT_TOOL_EVENT_OUTPUT_CHARS
    live_interval_s: float = DEFAULT_LIVE_OUTPUT_INTERVAL_MS / 1000
    live_budget: RateBudget = field(
        default_factory=lambda: RateBudget(DEFAULT_LIVE_OUTPUT_CHARS_PER_S)
    )
    """Shared by the calls of one prompt run, i.e. of the session (it runs one at a time)."""
    guidance: Guidance = field(default_factory=Guidance)
    """The repo's instructions and the team's skills, for this prompt run."""


@dataclass
class _Outcome:
    output: OutputCapture | str
    is_error: bool = False
    exit_code: int | None = None
    footer: str = ""
    """Appended after the (possibly cut) output, never cut itself."""


def _halves(limit: int, head_share: float) -> tuple[int, int]:
    head = int(limit * head_share)
    return head, limit - head


ARG_LIST_SHOWN = 100
"""Items of a list argument a ``tool-call`` event keeps when the arguments are too large."""


def shown_args(args: dict[str, Any], limit: int) -> dict[str, Any]:
    """``args`` for the ``tool-call`` event: unchanged when their JSON fits in ``limit``
    characters; else each long string cut to a share of it (half from the start, half from the
    end, with the omitted notice) and each long list to ``ARG_LIST_SHOWN`` items; and if that is
    still too large, a ``preview`` of the JSON."""
    text = json.dumps(args, ensure_ascii=False, default=str)
    if len(text) <= limit:
        return args
    share = max(64, limit // 8)

    def cut(value: Any) -> Any:
        if isinstance(value, str) and len(value) > share:
            head, tail = _halves(share, 0.5)
            capture = OutputCapture(head, tail)
            capture.add(value)
            return capture.render(head, tail)[0]
        if isinstance(value, list):
            kept = [cut(v) for v in value[:ARG_LIST_SHOWN]]
            if len(value) > ARG_LIST_SHOWN:
                kept.append(f"[… {len(value) - ARG_LIST_SHOWN:,} more items omitted …]")
            return kept
        if isinstance(value, dict):
            return {str(k)[:share]: cut(v) for k, v in list(value.items())[:ARG_LIST_SHOWN]}
        return value

    shown = {k: cut(v) for k, v in args.items()}
    smaller = json.dumps(shown, ensure_ascii=False, default=str)
    if len(smaller) <= limit:
        return shown
    return {"preview": smaller[:limit], "omitted_chars": len(text) - limit}


def _captured(output: OutputCapture | str, limit: int) -> OutputCapture:
    if isinstance(output, OutputCapture):
        return output
    head, tail = _halves(limit, 0.5)
    capture = OutputCapture(head, tail)
    capture.add(output)
    return capture


def render_output(capture: OutputCapture, limit: int, footer: str = "") -> tuple[str, bool]:
    """The output cut to ``limit`` characters (two thirds from the start, one third from the
    end) with the omitted notice in between, then ``footer``; and whether it was cut."""
    head, tail = _halves(limit, 2 / 3)
    text, omitted = capture.render(head, tail)
    return _with_footer(text, footer), omitted is not None


def _with_footer(text: str, footer: str) -> str:
    if not footer:
        return text
    return f"{text}{'' if not text or text.endswith(chr(10)) else chr(10)}{footer}"


def _call_id(ctx: RunContext[ToolDeps], tool: str) -> str:
    return ctx.tool_call_id or f"{tool}-{time.monotonic_ns()}"


async def _run_tool(
    ctx: RunContext[ToolDeps],
    tool: str,
    args: dict[str, Any],
    body: Callable[[SandboxConnection], Awaitable[_Outcome]],
    *,
    call_id: str | None = None,
    printed: OutputCapture | None = None,
) -> str:
    """Record the call, run ``body``, record its result. ``printed`` is the capture ``body``
    streams into: what a stopped call's result shows."""
    deps = ctx.deps
    call_id = call_id or _call_id(ctx, tool)
    common = {"session_id": deps.session_id, "prompt_id": deps.prompt_id}
    shown = shown_args(args, deps.event_limit_chars)
    await deps.host.emit(ToolCall(**common, call_id=call_id, tool=tool, args=shown))
    started = time.monotonic()
    try:
        box = await deps.host.sandbox()
        await deps.guidance.read_root(box)
        outcome = await body(box)
    except RpcError as exc:
        outcome = _Outcome(f"error [{exc.details.get('rpc_code', exc.code)}]: {exc.message}", True)
    except SandboxError as exc:
        outcome = _Outcome(f"error [{exc.code}]: {exc}", True)
    except asyncio.CancelledError:
        elapsed_s = time.monotonic() - started
        stopped = _Outcome(printed or "", True, footer=f"[stopped after {elapsed_s:.1f} s]")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOPPED_RESULT_TIMEOUT_S):
                await _record(deps, call_id, tool, stopped, elapsed_s, stopped=True)
        raise
    return await _record(deps, call_id, tool, outcome, time.monotonic() - started)


async def _record(
    deps: ToolDeps,
    call_id: str,
    tool: str,
    outcome: _Outcome,
    elapsed_s: float,
    *,
    stopped: bool = False,
) -> str:
    """Emit the call's ``tool-result``; returns the model's copy of the output."""
    capture = _captured(outcome.output, deps.event_limit_chars)
    for_model, truncated = render_output(capture, deps.output_limit_chars, outcome.footer)
    event_head, event_tail = _halves(deps.event_limit_chars, 0.5)
    for_event, _ = capture.render(event_head, event_tail)
    await deps.host.emit(
        ToolResult(
            session_id=deps.session_id,
            prompt_id=deps.prompt_id,
            call_id=call_id,
            tool=tool,
            output=_with_footer(for_event, outcome.footer),
            is_error=outcome.is_error,
            exit_code=outcome.exit_code,
            duration_ms=int(elapsed_s * 1000),
            truncated_for_model=truncated,
            stopped=stopped,
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

    call_id = _call_id(ctx, "bash")
    head, tail = _halves(deps.event_limit_chars, 0.5)
    capture = OutputCapture(head, tail)

    async def body(box: SandboxConnection) -> _Outcome:
        live = LiveOutput(
            deps.host.publish,
            session_id=deps.session_id,
            prompt_id=deps.prompt_id,
            call_id=call_id,
            interval_s=deps.live_interval_s,
            budget=deps.live_budget,
        )

        async def on_output(_stream: str, data: str) -> None:
            capture.add(data)
            live.add(data)

        try:
            result = await box.exec(command, timeout_s=limit, on_output=on_output, keep_chars=0)
        except BaseException:
            await live.close(flush=False)
            raise
        await live.close(flush=True)
        footer = f"[exit code {result.exit_code}]"
        if result.timed_out:
            footer = f"[timed out after {limit:g} s; process group killed]"
        failed = result.exit_code != 0 or result.timed_out
        return _Outcome(capture, failed, result.exit_code, footer=footer)

    return await _run_tool(ctx, "bash", args, body, call_id=call_id, printed=capture)


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
        result = await box.read_file(
            path, offset=offset, limit=limit, max_chars=ctx.deps.event_limit_chars
        )
        note = f"[file has {result['total_lines']} lines; output truncated]"
        footer = _joined(note if result["truncated"] else "", await _nested(ctx, box, path))
        return _Outcome(result["content"], footer=footer)

    return await _run_tool(ctx, "read", args, body)


async def _nested(ctx: RunContext[ToolDeps], box: SandboxConnection, path: str) -> str:
    """The instructions of ``path``'s directories the agent was not given yet ('' if none)."""
    return await ctx.deps.guidance.nested_note(box, path)


def _joined(*notes: str) -> str:
    return "\n".join(n for n in notes if n)


async def write(ctx: RunContext[ToolDeps], path: str, content: str) -> str:
    """Create or overwrite a file with `content` (parent directories are created)."""

    async def body(box: SandboxConnection) -> _Outcome:
        await box.write_file(path, content)
        note = await _nested(ctx, box, path)
        return _Outcome(f"Wrote {len(content)} characters to {path}", footer=note)

    return await _run_tool(ctx, "write", {"path": path, "content": content}, body)


async def edit(ctx: RunContext[ToolDeps], path: str, old: str, new: str) -> str:
    """Replace the one occurrence of `old` in a file with `new`. Fails if `old` is missing or
    occurs more than once (add surrounding lines to make it unique)."""

    async def body(box: SandboxConnection) -> _Outcome:
        await box.edit_file(path, old, new)
        return _Outcome(f"Edited {path}", footer=await _nested(ctx, box, path))

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


async def notify(ctx: RunContext[ToolDeps], text: str, channel: str | None = None) -> str:
    """Send a short message to the people following this session in Slack: its Slack thread,
    or `channel` (a channel id the server allows). Use it for news they should not miss (a
    question, a blocker, a result), not for progress. Plain text, at most 4,000 characters."""
    deps = ctx.deps
    args: dict[str, Any] = {"text": text}
    if channel is not None:
        args["channel"] = channel
    call_id = _call_id(ctx, "notify")
    common = {"session_id": deps.session_id, "prompt_id": deps.prompt_id}
    shown = shown_args(args, deps.event_limit_chars)
    await deps.host.emit(ToolCall(**common, call_id=call_id, tool="notify", args=shown))
    started = time.monotonic()
    try:  # no sandbox: the control plane posts
        outcome = _Outcome(await deps.host.notify(text, channel))
    except OpenInspectError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        outcome = _Outcome(f"error [{exc.code}]: {exc.message}{hint}", True)
    return await _record(deps, call_id, "notify", outcome, time.monotonic() - started)


async def submit_review(
    ctx: RunContext[ToolDeps],
    event: str,
    body: str,
    comments: list[dict[str, Any]] | None = None,
) -> str:
    """Post your review of the pull request this session reviews, once, as the review bot.
    `event`: APPROVE, REQUEST_CHANGES or COMMENT. `body`: the summary (Markdown). `comments`: line
    comments, each {path, line, side: RIGHT (new file, default) or LEFT (old file), start_line
    (optional, same hunk), body, suggestion (optional: the exact replacement of the anchored
    lines)}. Lines must be inside the diff's hunks; one that is not goes into the body."""
    deps = ctx.deps
    review: dict[str, Any] = {"event": event, "body": body, "comments": comments or []}
    call_id = _call_id(ctx, "submit_review")
    common = {"session_id": deps.session_id, "prompt_id": deps.prompt_id}
    shown = shown_args(review, deps.event_limit_chars)
    await deps.host.emit(ToolCall(**common, call_id=call_id, tool="submit_review", args=shown))
    started = time.monotonic()
    try:  # no sandbox: the control plane posts
        outcome = _Outcome(await deps.host.submit_review(review))
    except OpenInspectError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        outcome = _Outcome(f"error [{exc.code}]: {exc.message}{hint}", True)
    return await _record(deps, call_id, "submit_review", outcome, time.monotonic() - started)


async def load_skill(ctx: RunContext[ToolDeps], name: str) -> str:
    """Load one of the skills your team keeps (listed in your instructions, with when to use
    each) by its name: returns its instructions."""
    deps = ctx.deps
    call_id = _call_id(ctx, "load_skill")
    common = {"session_id": deps.session_id, "prompt_id": deps.prompt_id}
    args = shown_args({"name": name}, deps.event_limit_chars)
    await deps.host.emit(ToolCall(**common, call_id=call_id, tool="load_skill", args=args))
    started = time.monotonic()
    text = await deps.guidance.load_skill(name)  # no sandbox: the control plane keeps skills
    outcome = _Outcome(text, text.startswith("error ["))
    return await _record(deps, call_id, "load_skill", outcome, time.monotonic() - started)


def builtin_tools() -> list[Tool[ToolDeps]]:
    return [
        Tool(fn, takes_ctx=True)
        for fn in (
            bash,
            read,
            write,
            edit,
            glob,
            grep,
            create_pull_request,
            notify,
            submit_review,
            load_skill,
        )
    ]
