"""``openinspect secrets``: repo secrets (admins), environment variables of every box, or of
one registered repo's boxes with ``--repo``.

A value is never taken from the command line (every user of a host can read it, and shells keep
it in their history): ``set`` reads it from a file, from standard input, or from a prompt that
does not echo it. Values are write-only: nothing here shows one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from openinspect.cli.output import console, emit_json, open_client, print_table, run, table
from openinspect.cli.sessions import JsonOpt

secrets_app = typer.Typer(
    help="Repo secrets (admins): environment variables of boxes, global or --repo.",
    rich_markup_mode=None,
    no_args_is_help=True,
)
RepoOpt = Annotated[
    str | None,
    typer.Option(
        "--repo", help="A registered repo's name or id: its own secrets (default: global)."
    ),
]


def _params(repo: str | None) -> dict[str, str]:
    return {"repo": repo} if repo is not None else {}


def _where(secret: dict[str, Any]) -> str:
    return "global" if secret["scope"] == "global" else f"repo {secret['repo']}"


def _read_text(path: Path | None, what: str) -> str:
    """The text of ``path``, or of standard input (``path`` None or ``-``)."""
    from openinspect.errors import InvalidInput

    try:
        if path is not None and str(path) != "-":
            return path.read_text()
        if sys.stdin.isatty():
            typer.echo(f"Paste the {what}, then press Ctrl-D:", err=True)
        return sys.stdin.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"Cannot read the {what} from {path or 'standard input'}: {exc.__class__.__name__}",
            hint="Give a readable UTF-8 text file",
        ) from None


def _one_line_end_less(text: str) -> str:
    """``text`` without the one line end a file or ``echo`` adds."""
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


@secrets_app.command("list")
def secrets_list(repo: RepoOpt = None, json_out: JsonOpt = False) -> None:
    """List the secrets: names, scopes and times, never values. With --repo, what a box of
    that repo gets (a global secret the repo overrides is marked)."""

    async def main() -> int:
        async with open_client() as client:
            data = await client.request("GET", "/api/secrets", params=_params(repo))
        if json_out:
            for secret in data["secrets"]:
                emit_json(secret)
            return 0
        if not data["secrets"]:
            console().print("no secrets (an admin adds one with: openinspect secrets set NAME)")
            return 0
        grid = table("name", "scope", "updated")
        for s in data["secrets"]:
            scope = _where(s) + (" (overridden by the repo's)" if s["shadowed"] else "")
            grid.add_row(s["name"], scope, s["updated_at"][:19].replace("T", " "))
        print_table(grid)
        return 0

    run(main())


@secrets_app.command("set")
def secrets_set(
    name: Annotated[str, typer.Argument(help="An environment variable name, e.g. NPM_TOKEN.")],
    repo: RepoOpt = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            help="Read the value from this file, exactly as it is (a key keeps its last line end).",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Set a secret (create or replace it). The value comes from --from-file, from standard
    input when it is piped (less the one line end echo adds), or from a prompt that does not
    echo it; never from the command line."""

    async def main() -> int:
        if from_file is not None:
            value = _read_text(from_file, "value")
        elif not sys.stdin.isatty():
            value = _one_line_end_less(_read_text(None, "value"))
        else:
            value = typer.prompt(f"Value of {name}", hide_input=True, err=True)
        async with open_client() as client:
            made = await client.request(
                "PUT",
                f"/api/secrets/{quote(name, safe='')}",
                params=_params(repo),
                json={"value": value},
            )
        if json_out:
            emit_json(made)
        else:
            console().print(f"set {made['name']} ({_where(made)})", markup=False)
        return 0

    run(main())


@secrets_app.command("import")
def secrets_import(
    file: Annotated[
        Path | None,
        typer.Argument(help="A .env file ('-' or nothing: standard input)."),
    ] = None,
    repo: RepoOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Set every secret of a .env file: KEY=value lines, with export, quotes and # comments.
    All or nothing: a bad line (named by its number) imports none."""

    async def main() -> int:
        text = _read_text(file, ".env text")
        async with open_client() as client:
            done = await client.request(
                "POST", "/api/secrets/import", params=_params(repo), json={"text": text}
            )
        if json_out:
            for secret in done["imported"]:
                emit_json(secret)
            return 0
        names = ", ".join(s["name"] for s in done["imported"])
        where = "global" if repo is None else f"repo {repo}"
        console().print(f"imported {len(done['imported'])} ({where}): {names}", markup=False)
        return 0

    run(main())


@secrets_app.command("delete")
def secrets_delete(
    name: Annotated[str, typer.Argument(help="The secret's name.")],
    repo: RepoOpt = None,
) -> None:
    """Delete a secret (boxes already running keep it until they stop)."""

    async def main() -> int:
        async with open_client() as client:
            await client.request(
                "DELETE", f"/api/secrets/{quote(name, safe='')}", params=_params(repo)
            )
        where = "global" if repo is None else f"repo {repo}"
        console().print(f"deleted {name} ({where})", markup=False)
        return 0

    run(main())
