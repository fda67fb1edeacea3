"""``openinspect repos image``: a repo's image (new boxes start from it) and its builds."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from openinspect.cli.output import console, emit_json, open_client, print_table, run, table
from openinspect.cli.sessions import JsonOpt

image_app = typer.Typer(
    help="A repo's image: its workspace after .openinspect/setup.sh, which new sessions' "
    "boxes start from (then fetch the newest commits). Admins turn it on and ask for builds.",
    rich_markup_mode=None,
)
RepoArg = Annotated[str, typer.Argument(help="A registered repo's name or id.")]


def _path(repo: str, tail: str = "") -> str:
    return f"/api/repos/{quote(repo, safe='/')}/image{tail}"


def _build_line(build: dict[str, Any]) -> str:
    sha = (build["commit_sha"] or "")[:12] or "-"
    when = build["finished_at"] or build["started_at"] or build["created_at"]
    good = ", in use" if build["good"] else ""
    return f"{build['id']} {build['status']}{good} ({build['trigger']}) {sha} {when}"


def _show(shown: dict[str, Any]) -> None:
    out = console()
    state = "on" if shown["enabled"] else "off"
    if not shown["supported"]:
        state += " (this server's sandbox backend keeps no snapshots: no images)"
    out.print(f"image of {shown['repo']}: {state}", markup=False)
    out.print(f"  base branch:      {shown['base_branch']}", markup=False)
    out.print(f"  rebuilt at most:  every {shown['rebuild_interval_s']:g} s", markup=False)
    current = _build_line(shown["current"]) if shown["current"] else "(none)"
    out.print(f"  current image:    {current}", markup=False)
    if shown["pending"]:
        out.print(f"  pending build:    {_build_line(shown['pending'])}", markup=False)


def _set(repo: str, enabled: bool, json_out: bool) -> None:
    async def main() -> int:
        async with open_client() as client:
            shown = await client.request("PUT", _path(repo), json={"enabled": enabled})
        if json_out:
            emit_json(shown)
        else:
            _show(shown)
        return 0

    run(main())


@image_app.command("show")
def image_show(repo: RepoArg, json_out: JsonOpt = False) -> None:
    """Whether the repo's boxes start from an image, which one, and any build pending."""

    async def main() -> int:
        async with open_client() as client:
            shown = await client.request("GET", _path(repo))
        if json_out:
            emit_json(shown)
        else:
            _show(shown)
        return 0

    run(main())


@image_app.command("enable")
def image_enable(repo: RepoArg, json_out: JsonOpt = False) -> None:
    """Start the repo's new boxes from its image (admins); the first build starts shortly."""
    _set(repo, True, json_out)


@image_app.command("disable")
def image_disable(repo: RepoArg, json_out: JsonOpt = False) -> None:
    """Start the repo's new boxes from a fresh clone again (admins); images are kept."""
    _set(repo, False, json_out)


@image_app.command("build")
def image_build(repo: RepoArg, json_out: JsonOpt = False) -> None:
    """Build the repo's image now, whatever the rebuild interval (admins)."""

    async def main() -> int:
        async with open_client() as client:
            build = await client.request("POST", _path(repo, "/builds"))
        if json_out:
            emit_json(build)
        else:
            console().print(f"build {_build_line(build)}", markup=False)
            console().print(f"its log: openinspect repos image log {repo} {build['id']}")
        return 0

    run(main())


@image_app.command("builds")
def image_builds(
    repo: RepoArg,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest first.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """The repo's image builds, newest first."""

    async def main() -> int:
        async with open_client() as client:
            data = await client.request("GET", _path(repo, f"/builds?limit={limit}"))
        if json_out:
            for build in data["builds"]:
                emit_json(build)
            return 0
        if not data["builds"]:
            console().print("no builds yet")
            return 0
        grid = table("id", "status", "trigger", "commit", "started", "finished", "error")
        for b in data["builds"]:
            status = b["status"] + (" (in use)" if b["good"] else "")
            grid.add_row(
                b["id"],
                status,
                b["trigger"],
                (b["commit_sha"] or "")[:12],
                b["started_at"] or "",
                b["finished_at"] or "",
                b["error"] or "",
            )
        print_table(grid)
        return 0

    run(main())


@image_app.command("log")
def image_log(
    repo: RepoArg,
    build_id: Annotated[str, typer.Argument(help="A build's id (see: repos image builds).")],
    json_out: JsonOpt = False,
) -> None:
    """One build: its outcome and the end of its boot log."""

    async def main() -> int:
        async with open_client() as client:
            build = await client.request("GET", _path(repo, f"/builds/{quote(build_id)}"))
        if json_out:
            emit_json(build)
            return 0
        out = console()
        out.print(f"build {_build_line(build)}", markup=False)
        if build["error"]:
            out.print(f"error: {build['error']}", markup=False)
        out.print(build["log"] or "(no log)", markup=False, highlight=False)
        return 0

    run(main())
