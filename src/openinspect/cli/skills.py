"""``openinspect skills``: managed skills, instruction files the team keeps for the agent,
global or of one registered repo (``--repo``). Everyone lists them; admins set and delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from openinspect.cli.output import console, emit_json, open_client, print_table, run, table
from openinspect.cli.secrets import _read_text
from openinspect.cli.sessions import JsonOpt

skills_app = typer.Typer(
    help="Managed skills: instructions the agent loads when it needs them (global or --repo).",
    rich_markup_mode=None,
    no_args_is_help=True,
)
RepoOpt = Annotated[
    str | None,
    typer.Option("--repo", help="A registered repo's name or id: its skills (default: global)."),
]


def _params(repo: str | None) -> dict[str, str]:
    return {"repo": repo} if repo is not None else {}


@skills_app.command("list")
def skills_list(repo: RepoOpt = None, json_out: JsonOpt = False) -> None:
    """List the skills an agent sees (with --repo: that repo's and the global ones)."""

    async def main() -> int:
        async with open_client() as client:
            data = await client.request("GET", "/api/skills", params=_params(repo))
        if json_out:
            for skill in data["skills"]:
                emit_json(skill)
            return 0
        if not data["skills"]:
            console().print("no skills (an admin adds one with: openinspect skills set NAME …)")
            return 0
        grid = table("name", "scope", "description")
        for s in data["skills"]:
            scope = "global" if s["scope"] == "global" else f"repo {s['repo']}"
            grid.add_row(s["name"], scope, s["description"])
        print_table(grid)
        return 0

    run(main())


@skills_app.command("set")
def skills_set(
    name: Annotated[str, typer.Argument(help="The skill's name, e.g. release-notes.")],
    description: Annotated[
        str, typer.Option("--description", "-d", help="One line: when the agent should load it.")
    ],
    body_file: Annotated[
        Path | None,
        typer.Option("--from-file", help="The body (Markdown); default: standard input."),
    ] = None,
    repo: RepoOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create or replace a skill (admins); its body comes from --from-file or standard input."""

    async def main() -> int:
        body = _read_text(body_file, "skill body")
        async with open_client() as client:
            done = await client.request(
                "PUT",
                f"/api/skills/{quote(name, safe='')}",
                params=_params(repo),
                json={"description": description, "body": body},
            )
        if json_out:
            emit_json(done)
            return 0
        where = "global" if repo is None else f"repo {repo}"
        console().print(f"set skill {done['name']} ({where})", markup=False)
        return 0

    run(main())


@skills_app.command("delete")
def skills_delete(
    name: Annotated[str, typer.Argument(help="The skill's name.")], repo: RepoOpt = None
) -> None:
    """Delete a skill (admins)."""

    async def main() -> int:
        async with open_client() as client:
            await client.request(
                "DELETE", f"/api/skills/{quote(name, safe='')}", params=_params(repo)
            )
        where = "global" if repo is None else f"repo {repo}"
        console().print(f"deleted skill {name} ({where})", markup=False)
        return 0

    run(main())
