"""How the CLI shows an error: its code, message, the server's hint (for every client), then the
CLI's own advice for that code."""

from __future__ import annotations

import pytest
import typer

from openinspect.cli.client import ApiError
from openinspect.cli.output import run
from openinspect.errors import SESSION_NOT_FOUND_HINT


async def _missing_session() -> int:
    raise ApiError(404, "session_not_found", "No session 'ses_x'", SESSION_NOT_FOUND_HINT)


def test_an_error_shows_the_servers_hint_then_the_clis(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as stopped:
        run(_missing_session())
    assert stopped.value.exit_code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "error [session_not_found]: No session 'ses_x'",
        f"hint: {SESSION_NOT_FOUND_HINT}",
        "hint: List sessions with `openinspect sessions list`",
    ]
