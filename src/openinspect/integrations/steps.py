"""What a tool call works on, in a few words, for the status an integration shows (a Slack
thread's status line, a Linear ``action`` activity): the command, the path or the pattern, made
one line and cut. Pure."""

from __future__ import annotations

TOOL_ARG = {
    "bash": "command",
    "write": "path",
    "edit": "path",
    "read": "path",
    "glob": "pattern",
    "grep": "pattern",
}
"""The argument that says what each builtin tool works on."""


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(text: str) -> str:
    return " ".join(text.split())


def tool_detail(tool: str, args: dict[str, object], limit: int) -> str:
    """The argument ``tool`` works on, one line, at most ``limit`` characters ("" for none)."""
    name = TOOL_ARG.get(tool)
    value = args.get(name) if name is not None else None
    return cut(one_line(value), limit) if isinstance(value, str) else ""
