"""Start-up of the CLI: the client commands import no server package (the benchmark's
``cli_start_ms`` times them), the CLI's copies of the server's file names stay in step, and
help prints flags as flags."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from openinspect.api.auth import ADMIN_TOKEN_FILE
from openinspect.api.server import SERVER_FILE
from openinspect.cli import local
from openinspect.cli.main import app
from openinspect.settings import DEFAULT_HOME, DEFAULT_PORT, Settings
from openinspect.testing.server import ServerProcess
from tests.cli.helpers import cli, heavy, imported_modules

IMPORTTIME = ("-X", "importtime")


def test_help_imports_no_server_package(tmp_path: Path) -> None:
    done = cli("--help", env={"OPENINSPECT_HOME": str(tmp_path)}, python_flags=IMPORTTIME)
    assert done.returncode == 0, done.stderr[-2000:]
    modules = imported_modules(done.stderr)
    assert "openinspect.cli.main" in modules  # the parse saw the CLI's own imports
    assert heavy(modules) == []
    # --help needs neither the HTTP client nor rich, nor pydantic (typer's adapters).
    assert not {"httpx", "websockets", "rich.console"} & modules
    assert not lazy_only(modules)


LAZY_ONLY = ("pydantic", "typer._adapters", "annotated_types")
"""What typer loads to coerce parameters: client commands whose parameters are flags (and
``--help``) must not pay for it (``openinspect.cli.flags``)."""


def lazy_only(modules: set[str]) -> list[str]:
    return sorted(m for m in modules for h in LAZY_ONLY if m == h or m.startswith(f"{h}."))


def test_sessions_list_help_imports_no_pydantic(tmp_path: Path) -> None:
    env = {"OPENINSPECT_HOME": str(tmp_path)}
    done = cli("sessions", "list", "--help", env=env, python_flags=IMPORTTIME)
    assert done.returncode == 0, done.stderr[-2000:]
    modules = imported_modules(done.stderr)
    assert "openinspect.cli.sessions" in modules
    assert lazy_only(modules) == []
    assert not {"httpx", "rich.console"} & modules


@pytest.mark.e2e
def test_client_commands_against_a_server_import_no_server_package(
    server: ServerProcess,
) -> None:
    for args in (("sessions", "list"), ("repos",), ("tokens", "list")):
        done = cli(*args, server=server, python_flags=IMPORTTIME)
        assert done.returncode == 0, done.stderr[-2000:]
        modules = imported_modules(done.stderr)
        assert "httpx" in modules  # it did talk to the server
        assert heavy(modules) == [], args
        assert "websockets" not in modules, args  # only the commands that watch need it
        assert lazy_only(modules) == [], args


def test_the_cli_copies_of_server_names_match_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (local.SERVER_FILE, local.ADMIN_TOKEN_FILE) == (SERVER_FILE, ADMIN_TOKEN_FILE)
    assert (local.DEFAULT_HOME, local.DEFAULT_PORT) == (DEFAULT_HOME, DEFAULT_PORT)
    for name in [k for k in os.environ if k.upper() == "OPENINSPECT_HOME"]:
        monkeypatch.delenv(name)
    assert local.home_dir() == Settings().home_dir
    monkeypatch.setenv("OPENINSPECT_HOME", str(tmp_path / "a"))
    assert local.home_dir() == Settings().home_dir == tmp_path / "a"
    monkeypatch.delenv("OPENINSPECT_HOME")
    monkeypatch.setenv("openinspect_home", "~/elsewhere")
    assert local.home_dir() == Settings().home_dir == Path("~/elsewhere").expanduser()


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``group`` (typer's own click groups have ``commands``)."""
    found = [path]
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found += _commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


def test_every_help_prints_flags_as_flags() -> None:
    paths = _commands(typer.main.get_command(app))
    assert ("sessions", "cancel") in paths and ("repos", "add") in paths
    runner = CliRunner()
    flags_seen = 0
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
        for line in result.output.splitlines():
            if line.strip().startswith(("--json ", "--help ")):
                flags_seen += 1
                # The flag is followed by its help text, not by a value placeholder.
                assert "<" not in line.split()[1], (path, line)
    assert flags_seen > len(paths)


def test_a_plain_http_client_skips_the_ca_bundle_and_trusts_nothing() -> None:
    """Skipping the CA bundle for http:// servers must not turn into trusting any https."""
    from openinspect.cli.client import _tls_for

    context = _tls_for("http://127.0.0.1:8765")
    assert isinstance(context, ssl.SSLContext)
    assert context.get_ca_certs() == [] and context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert _tls_for("https://openinspect.example") is True
