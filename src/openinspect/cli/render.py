"""Terminal rendering of session events, and the live watch loop shared by run/watch/demo."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.status import Status
from rich.text import Text

from openinspect.cli.client import Client

TOOL_OUTPUT_LINES = 12
RECONNECT_MAX_S = 10.0
EPHEMERAL_TYPES = ("agent-text-delta", "tool-output-delta")
"""Published, never stored: they carry no seq of their own (``domain.events``)."""
OUTPUT_INDENT = "  "
LIVE_LINE_MAX_CHARS = 2000
_RESULT_FOOTER = re.compile(r"\n?\[(?:exit code -?\d+|stopped after [\d.]+ s)\]\n?$")


@dataclass
class _LiveCall:
    """A tool call whose output is being printed as it streams."""

    label: str
    started: float
    next_index: int = 0
    partial: str = ""
    streamed: bool = False


def _clip(text: str, lines: int = TOOL_OUTPUT_LINES) -> str:
    rows = text.rstrip("\n").splitlines()
    if len(rows) <= lines:
        return "\n".join(rows)
    return "\n".join([*rows[: lines - 1], f"… ({len(rows) - lines + 1} more lines)"])


def describe_call(tool: str, args: dict[str, Any]) -> str:
    if tool == "bash":
        return f"$ {args.get('command', '')}"
    detail = args.get("path") or args.get("pattern") or ""
    return f"{tool} {detail}".strip()


class Renderer:
    """Prints events for people (rich) or as JSON lines (``json_mode``)."""

    def __init__(self, console: Console, *, json_mode: bool = False) -> None:
        self.console = console
        self.json_mode = json_mode
        self.status: Status | None = None
        self.cost_usd = 0.0
        self._calls: dict[str, _LiveCall] = {}

    def progress(self, message: str) -> None:
        if self.status is not None:
            self.status.update(f"{message}  [dim]${self.cost_usd:.4f}[/]")

    def event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if self.json_mode:
            if kind not in EPHEMERAL_TYPES:
                sys.stdout.write(json.dumps(event) + "\n")
                sys.stdout.flush()
            return
        out = self.console.print
        if kind == "agent-text-delta":
            self.progress("[cyan]model writing…[/]")
        elif kind == "tool-output-delta":
            self._live_output(event)
        elif kind == "session-created":
            out(
                f"[bold]●[/] session [bold]{event['session_id']}[/] on {event['repo_url']} "
                f"([cyan]{event['base_branch']}[/] → [cyan]{event['branch']}[/]) · {event['model']}"
            )
        elif kind == "prompt-queued":
            out(
                Text.assemble(
                    ("› ", "bold magenta"),
                    (f"{event['author']['name']}: ", "magenta"),
                    event["content"],
                )
            )
        elif kind == "prompt-started":
            self.progress("[cyan]model thinking…[/]")
        elif kind == "agent-text":
            from rich.markdown import Markdown  # markdown-it is slow to import: only when needed

            out(Markdown(event["text"]))
        elif kind == "agent-thinking":
            out(Text(_clip(event["text"], 4), style="dim italic"))
        elif kind == "tool-call":
            label = describe_call(event["tool"], event["args"])
            self._calls[event["call_id"]] = _LiveCall(label, time.monotonic())
            out(Text(label, style="bold yellow"))
            self.progress(f"[yellow]{label[:60]}[/]")
        elif kind == "tool-result":
            self._result(event)
            self.progress("[cyan]model thinking…[/]")
        elif kind == "usage":
            self.cost_usd = event["total_cost_usd"]
        elif kind == "sandbox-status":
            msg = f" — {event['message']}" if event.get("message") else ""
            out(f"[dim]sandbox {event['status']}{msg}[/]")
        elif kind == "sandbox-log":
            out(Text(f"  {event['source']}| {event['line']}", style="dim"))
        elif kind == "git-commit":
            out(
                f"[green]✔ commit {event['sha'][:10]}[/] on {event['branch']} by "
                f"{event['author']['name']} ({event['files_changed']} files)"
            )
        elif kind == "git-push":
            out(f"[green]✔ pushed {event['branch']}[/] → {event['remote']}")
        elif kind == "prompt-finished":
            color = {"success": "green", "stopped": "yellow"}.get(event["status"], "red")
            error = event.get("error") or {}
            detail = f": [{error.get('code')}] {error.get('message')}" if error else ""
            out(
                f"[{color}]■ prompt {event['status']}{detail}[/] "
                f"[dim]({(event.get('duration_ms') or 0) / 1000:.1f} s, ${self.cost_usd:.4f})[/]"
            )
        elif kind == "prompt-cancelled":
            out("[yellow]prompt cancelled[/]")
        elif kind == "spend-limit-reached":
            out(Text(f"⏸ queue paused: {event['message']} — {event['hint']}", style="yellow"))
        elif kind == "spend-limit-lifted":
            out(Text("▶ spend limit raised: the queue runs again", style="green"))
        elif kind in ("warning", "error"):
            color = "yellow" if kind == "warning" else "red"
            out(f"[{color}]{kind} [{event['code']}]: {event['message']}[/]")

    def _live_output(self, event: dict[str, Any]) -> None:
        """Print the complete lines of a running command's output as they arrive (dim, like
        its result); say where output was left out or missed (joined late, reconnected)."""
        call = self._calls.setdefault(event["call_id"], _LiveCall("command", time.monotonic()))
        missed = event["index"] != call.next_index or event["skipped_chars"]
        call.next_index = event["index"] + 1
        if missed:
            self._print_partial(call)
            note = (
                f"… {event['skipped_chars']:,} characters not shown live …"
                if event["skipped_chars"]
                else "… earlier output not shown live …"
            )
            self.console.print(Text(OUTPUT_INDENT + note, style="dim italic"))
        call.streamed = True
        *lines, call.partial = (call.partial + event["data"]).split("\n")
        for line in lines:
            self.console.print(Text(OUTPUT_INDENT + line[:LIVE_LINE_MAX_CHARS], style="dim"))
        if len(call.partial) > LIVE_LINE_MAX_CHARS:
            self._print_partial(call)
        self.progress(
            f"[yellow]{call.label[:60]}[/] [dim]{time.monotonic() - call.started:.0f} s[/]"
        )

    def _print_partial(self, call: _LiveCall) -> None:
        if call.partial:
            text = OUTPUT_INDENT + call.partial[:LIVE_LINE_MAX_CHARS]
            self.console.print(Text(text, style="dim"))
            call.partial = ""

    def _result(self, event: dict[str, Any]) -> None:
        """The output once (unless it was streamed already), then one line with how it ended
        and how long it took."""
        call = self._calls.pop(event["call_id"], None)
        output = event["output"]
        if event.get("exit_code") is not None or event.get("stopped"):
            output = _RESULT_FOOTER.sub("", output)
        if call is not None and call.streamed:
            self._print_partial(call)
        elif output.strip():
            indented = "\n".join(OUTPUT_INDENT + line for line in _clip(output).splitlines())
            self.console.print(Text(indented, style="red" if event["is_error"] else "dim"))
        seconds = (event.get("duration_ms") or 0) / 1000
        if event.get("stopped"):
            self.console.print(Text(f"{OUTPUT_INDENT}■ stopped after {seconds:.1f} s", "yellow"))
        elif event.get("exit_code") is not None:
            code = event["exit_code"]
            style = "dim" if code == 0 else "red"
            self.console.print(Text(f"{OUTPUT_INDENT}exit {code} · {seconds:.1f} s", style))


async def watch(
    client: Client,
    session_id: str,
    renderer: Renderer,
    *,
    until: Callable[[dict[str, Any]], bool] | None = None,
    since_seq: int | None = 0,
) -> dict[str, Any] | None:
    """Stream a session's events until ``until(event)`` is true (or forever). Reconnects with
    backoff and resumes from the last seq, so nothing is missed or printed twice. Returns the
    event that ended the watch."""
    from websockets.exceptions import ConnectionClosed

    last_seq = since_seq
    delay = 0.2
    while True:
        try:
            ws = await client.connect(session_id, since_seq=last_seq)
            async with ws:
                delay = 0.2
                async for raw in ws:
                    message = json.loads(raw)
                    events: list[dict[str, Any]] = []
                    if message["type"] == "subscribed":
                        events = message["events"]
                    elif message["type"] == "event":
                        events = [message["event"]]
                    elif message["type"] == "error":
                        renderer.console.print(f"[red]{message['code']}: {message['message']}[/]")
                    for event in events:
                        if event["type"] not in EPHEMERAL_TYPES:
                            if last_seq is not None and event["seq"] <= last_seq:
                                continue
                            last_seq = event["seq"]
                        renderer.event(event)
                        if until is not None and until(event):
                            return event
        except (OSError, ConnectionClosed):
            renderer.progress(f"[red]disconnected — reconnecting in {delay:.1f} s[/]")
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)
