"""``openinspect mcp``: MCP servers whose tools the agent gets (admins add and remove; anyone
lists), global or of one registered repo with ``--repo``.

``add NAME --url URL`` is a remote server (streamable HTTP) the control plane calls; its
credential header's value is never taken from the command line (every user of a host can read
it): it comes from ``--credential-file``, from standard input when piped, or from a prompt that
does not echo it, and is write-only. ``add NAME -- python3 server.py …`` is a stdio server run
inside the box, which gets no credential.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from openinspect.cli.output import console, emit_json, open_client, print_table, run, table
from openinspect.cli.secrets import _one_line_end_less, _read_text
from openinspect.cli.sessions import JsonOpt

mcp_app = typer.Typer(
    help="MCP servers: the agent's tools from remote (http) or in-box (stdio) servers.",
    rich_markup_mode=None,
    no_args_is_help=True,
)
RepoOpt = Annotated[
    str | None,
    typer.Option(
        "--repo", help="A registered repo's name or id: its own servers (default: global)."
    ),
]


def _params(repo: str | None) -> dict[str, str]:
    return {"repo": repo} if repo is not None else {}


def _where(server: dict[str, Any]) -> str:
    return "global" if server["scope"] == "global" else f"repo {server['repo']}"


@mcp_app.command("list")
def mcp_list(repo: RepoOpt = None, json_out: JsonOpt = False) -> None:
    """List the MCP servers (header names, never their values). With --repo, what a prompt on
    that repo gets (a global server the repo overrides is marked)."""

    async def main() -> int:
        async with open_client() as client:
            data = await client.request("GET", "/api/mcp-servers", params=_params(repo))
        if json_out:
            for server in data["servers"]:
                emit_json(server)
            return 0
        if not data["servers"]:
            console().print("no MCP servers (an admin adds one with: openinspect mcp add NAME)")
            return 0
        grid = table("name", "scope", "transport", "target", "tools")
        for s in data["servers"]:
            scope = _where(s) + (" (overridden by the repo's)" if s["shadowed"] else "")
            scope += "" if s["enabled"] else " (disabled)"
            target = s["url"] if s["transport"] == "http" else " ".join(s["command"] or [])
            if s["header_names"]:
                target += f" [{', '.join(s['header_names'])}]"
            grid.add_row(s["name"], scope, s["transport"], target, ", ".join(s["tools"] or ["all"]))
        print_table(grid)
        return 0

    run(main())


@mcp_app.command("add")
def mcp_add(
    name: Annotated[str, typer.Argument(help="The server's name; its tools are NAME__tool.")],
    command: Annotated[
        list[str] | None,
        typer.Argument(help="After --: the argv of a stdio server, run in the box's repo."),
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="A remote server's streamable HTTP URL.")
    ] = None,
    header: Annotated[
        str | None,
        typer.Option(
            "--credential-header",
            help="Send a credential in this header (e.g. Authorization); its value comes from "
            "--credential-file, piped standard input, or a prompt.",
        ),
    ] = None,
    credential_file: Annotated[
        Path | None,
        typer.Option("--credential-file", help="Read the header's value from this file."),
    ] = None,
    tool: Annotated[
        list[str] | None, typer.Option("--tool", help="Give the agent only this tool (repeatable).")
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
    repo: RepoOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add or replace an MCP server: --url for a remote one, or a command after -- for one run
    inside the box. Replacing a remote one without --credential-header keeps its credential."""

    async def main() -> int:
        from openinspect.errors import InvalidInput

        if (url is None) == (not command):
            raise InvalidInput(
                "Give either --url (a remote server) or a command after -- (a stdio server)",
                hint="e.g. openinspect mcp add tracker --url https://…/mcp "
                "--credential-header Authorization",
            )
        body: dict[str, Any] = {"transport": "http" if url else "stdio", "enabled": not disabled}
        if url is not None:
            body["url"] = url
        else:
            body["command"] = list(command or [])
        if tool:
            body["tools"] = list(tool)
        if header is not None:
            if credential_file is not None:
                value = _one_line_end_less(_read_text(credential_file, "credential"))
            elif not sys.stdin.isatty():
                value = _one_line_end_less(_read_text(None, "credential"))
            else:
                value = typer.prompt(f"Value of the {header} header", hide_input=True, err=True)
            body["headers"] = {header: value}
        async with open_client() as client:
            made = await client.request(
                "PUT",
                f"/api/mcp-servers/{quote(name, safe='')}",
                params=_params(repo),
                json=body,
            )
        if json_out:
            emit_json(made)
        else:
            console().print(f"added {made['name']} ({_where(made)})", markup=False)
        return 0

    run(main())


@mcp_app.command("remove")
def mcp_remove(
    name: Annotated[str, typer.Argument(help="The server's name.")],
    repo: RepoOpt = None,
) -> None:
    """Remove an MCP server (a prompt already running keeps its tools until it ends)."""

    async def main() -> int:
        async with open_client() as client:
            await client.request(
                "DELETE", f"/api/mcp-servers/{quote(name, safe='')}", params=_params(repo)
            )
        where = "global" if repo is None else f"repo {repo}"
        console().print(f"removed {name} ({where})", markup=False)
        return 0

    run(main())
