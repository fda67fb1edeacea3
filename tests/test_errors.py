"""Every hint the server writes is for every client: the web app shows it as it is, so no hint
names a CLI command or flag, and none has backticks (markup one client renders and another shows
raw). A client adds its own advice by error code (the CLI's ``cli.output.CLI_HINTS``, the web's
``hints.ts``). The hints are found in the source, so a new one is checked without a list."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

import openinspect
from openinspect import errors
from openinspect.cli.main import app

SRC = Path(openinspect.__file__).parent
CLIENT_ONLY = ("cli/", "testing/")
"""The CLI's own errors are shown by the CLI alone; the test doubles are not the server."""
NOT_FOR_THE_WEB_APP = {
    "api/web.py": "the page served when the web app is not built, for whoever runs from source",
    "bus/redis.py": "start-up: a missing extra, in the server's terminal",
    "store/db.py": "start-up: a missing extra, in the server's terminal",
    "sandboxes/local.py": "start-up: a missing package, in the server's terminal",
    "sandboxes/boxuser.py": "start-up: the sandbox user, a shell command for the operator",
    "scm/pktline.py": "answers a git client pushing from a sandbox, not a person",
}
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
CLI_ADVICE = re.compile(
    rf"`|\bopeninspect (?:{'|'.join(COMMANDS)})\b|(?:^|[\s(])--[a-z]|\b(?:uv|pip|make|export) [a-z]"
)


def _text(node: ast.expr) -> str | None:
    """The literal text of a hint expression (f-string holes as ``{}``), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v) or "{}" for v in node.values)
    if isinstance(node, ast.FormattedValue):
        return "{}"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        return None if left is None and right is None else f"{left or '{}'}{right or '{}'}"
    if isinstance(node, ast.IfExp):
        return f"{_text(node.body) or ''} | {_text(node.orelse) or ''}"
    return None


def server_hints() -> Iterator[tuple[str, int, str]]:
    """(module, line, text) of every ``hint=`` argument and ``…_HINT`` constant the server has."""
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC).as_posix()
        if module.startswith(CLIENT_ONLY) or module in NOT_FOR_THE_WEB_APP:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            found: list[ast.expr] = []
            if isinstance(node, ast.Call):
                found += [k.value for k in node.keywords if k.arg == "hint"]
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if node.value is not None and any(n.endswith("HINT") for n in names):
                    found.append(node.value)
            for value in found:
                text = _text(value)
                if text is not None:
                    yield module, value.lineno, text


def test_the_scan_finds_the_hints() -> None:
    assert {"serve", "sessions", "login"} <= set(COMMANDS)
    hints = list(server_hints())
    assert len(hints) > 50
    assert any(m == "agent/models.py" for m, _, _ in hints)
    assert any(m == "sessions/manager.py" for m, _, _ in hints)


@pytest.mark.parametrize(("module", "line", "text"), list(server_hints()))
def test_no_server_hint_has_cli_advice_or_backticks(module: str, line: int, text: str) -> None:
    assert not CLI_ADVICE.search(text), f"{module}:{line}: {text!r}"


def test_every_error_class_is_raised_with_a_client_neutral_default() -> None:
    classes = [errors.OpenInspectError]
    for cls in classes:
        classes += cls.__subclasses__()
    assert len(classes) > 20
    for cls in classes:
        assert re.fullmatch(r"[a-z_]+", cls.code), cls
        default = getattr(cls, "hint", None)
        assert not isinstance(default, str) or not CLI_ADVICE.search(default), cls
