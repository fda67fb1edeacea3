"""``openinspect repos``: the repositories registered on the server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openinspect.cli.output import console, emit_json, open_client, print_table, run, table
from openinspect.cli.sessions import JsonOpt

repos_app = typer.Typer(
    help="Repos registered on the server: `run --repo NAME` takes their name or id.",
    rich_markup_mode=None,
)


@repos_app.callback(invoke_without_command=True)
def repos_list(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List the registered repos (or: repos add NAME URL)."""
    if ctx.invoked_subcommand is not None:
        return

    async def main() -> int:
        async with open_client() as client:
            data = await client.request("GET", "/api/repos")
        if json_out:
            for repo in data["repos"]:
                emit_json(repo)
            return 0
        if not data["repos"]:
            console().print("no registered repos (an admin adds one with: openinspect repos add)")
            return 0
        grid = table("id", "name", "url", "default branch")
        for r in data["repos"]:
            grid.add_row(r["id"], r["name"], r["url"], r["default_branch"])
        print_table(grid)
        return 0

    run(main())


@repos_app.command("add")
def repos_add(
    name: Annotated[str, typer.Argument(help="Short name, e.g. acme/widgets.")],
    url: Annotated[str, typer.Argument(help="Git URL, or a local path (resolved here).")],
    default_branch: Annotated[str, typer.Option(help="Branch sessions start from.")] = "main",
    json_out: JsonOpt = False,
) -> None:
    """Register a repo (admins only)."""
    from openinspect.cli.repo import resolve_repo
    from openinspect.errors import InvalidInput

    async def main() -> int:
        choice = resolve_repo(url, Path.cwd())
        if choice.name is not None:
            raise InvalidInput(
                f"Not a git URL or an existing path: {(Path.cwd() / url).resolve()}",
                hint="Give a git URL or the path of a local git repository",
            )
        async with open_client() as client:
            created = await client.request(
                "POST",
                "/api/repos",
                json={"name": name, "url": choice.value, "default_branch": default_branch},
            )
        if json_out:
            emit_json(created)
        else:
            console().print(f"registered {created['name']} ({created['id']}): {created['url']}")
        return 0

    run(main())
