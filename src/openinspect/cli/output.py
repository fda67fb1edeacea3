"""The consoles, the error boundary and the tables shared by the commands.

rich is imported on first use, not at start-up: ``--help`` and the argument errors never need it.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import typer

from openinspect.errors import OpenInspectError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from openinspect.cli.client import Client

ID_COLUMNS = frozenset({"id", "prompt", "session"})
"""Columns holding ids: never wrapped or cut, since people copy them into the next command."""
WRAPPED_COLUMNS = frozenset({"repo", "title", "name", "url", "reason"})
"""Free text, which wraps (folding long paths); every other column keeps its width."""
MIN_WRAPPED_WIDTH = 8
"""Narrowest a wrapping column gets before the table grows past the terminal instead."""


@functools.cache
def console() -> Console:
    from rich.console import Console

    return Console()


@functools.cache
def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def open_client() -> Client:
    """A client of the server this CLI talks to (see ``discover``); httpx is imported here, not
    when the command line is parsed."""
    from openinspect.cli.client import Client, discover

    return Client(discover())


CLI_HINTS = {
    "session_not_found": "List sessions with `openinspect sessions list`",
    "automation_not_found": "List automations with `openinspect automations list`",
    "secret_not_found": "List them with `openinspect secrets list` (--repo NAME for a repo's)",
    "image_build_not_found": "List them with `openinspect repos image builds NAME`",
}
"""The CLI's own advice by error code, after the server's hint (which is for every client)."""


def run(coro: Coroutine[Any, Any, int | None]) -> None:
    """Run a command's coroutine; an openinspect error becomes its code, message and hint on
    stderr and exit status 2."""
    import asyncio

    from openinspect.cli.client import ApiError

    try:
        code = asyncio.run(coro)
    except OpenInspectError as exc:
        from rich.markup import escape

        error_code = exc.api_code if isinstance(exc, ApiError) else exc.code
        err_console().print(f"[red]error \\[{error_code}]:[/] {escape(exc.message)}")
        for hint in (exc.hint, CLI_HINTS.get(error_code)):
            if hint:
                err_console().print(f"[dim]hint: {escape(hint)}[/]")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    raise typer.Exit(code or 0)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")


def table(*columns: str) -> Table:
    """A table whose id columns keep their full width however narrow the terminal is: only the
    free-text columns wrap. Print it with :func:`print_table`."""
    from rich.table import Table

    grid = Table()
    for name in columns:
        wraps = name in WRAPPED_COLUMNS and name not in ID_COLUMNS
        grid.add_column(name, no_wrap=not wraps, overflow="fold" if wraps else "ignore")
    return grid


def print_table(grid: Table) -> None:
    """Print ``grid`` at least as wide as its fixed columns need (plus a few characters for each
    wrapping one): rich shrinks every column alike once the wrapping ones are at their minimum,
    which would cut ids on a narrow terminal or in an 80-column pipe. Too narrow a terminal
    wraps the table's lines instead."""
    out = console()
    needed = 1  # the left border
    for column in grid.columns:
        cells = [str(column.header), *(str(cell) for cell in column.cells)]
        content = max(map(len, cells)) if column.no_wrap else MIN_WRAPPED_WIDTH
        needed += content + 2 + 1  # padding either side, then the border
    width = out.width
    out.width = max(width, needed)
    try:
        out.print(grid)
    finally:
        out.width = width
