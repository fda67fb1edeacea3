"""Terminal rendering of session events, and the live watch loop shared by run/watch/demo."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.status import Status
from rich.text import Text

from openinspect.cli.client import Client

TOOL_OUTPUT_LINES = 12
RECONNECT_MAX_S = 10.0


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

    def progress(self, message: str) -> None:
        if self.status is not None:
            self.status.update(f"{message}  [dim]${self.cost_usd:.4f}[/]")

    def event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if self.json_mode:
            if kind != "agent-text-delta":
                sys.stdout.write(json.dumps(event) + "\n")
                sys.stdout.flush()
            return
        out = self.console.print
        if kind == "agent-text-delta":
            self.progress("[cyan]model writing…[/]")
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
            out(Text(describe_call(event["tool"], event["args"]), style="bold yellow"))
            self.progress(f"[yellow]{describe_call(event['tool'], event['args'])[:60]}[/]")
        elif kind == "tool-result":
            style = "red" if event["is_error"] else "dim"
            if event["output"].strip():
                out(Text(_clip(event["output"]), style=style))
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
        elif kind in ("warning", "error"):
            color = "yellow" if kind == "warning" else "red"
            out(f"[{color}]{kind} [{event['code']}]: {event['message']}[/]")


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
                        if event["type"] != "agent-text-delta":
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
