"""``openinspect repos``: the repositories registered on the server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openinspect.cli.images import image_app
from openinspect.cli.output import console, emit_json, open_client, print_table, run, table
from openinspect.cli.sessions import JsonOpt

repos_app = typer.Typer(
    help="Repos registered on the server: `run --repo NAME` takes their name or id.",
    rich_markup_mode=None,
)
repos_app.add_typer(image_app, name="image")


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


_AUTO_REVIEW = {"on": True, "off": False, "default": None}


@repos_app.command("review")
def repos_review(
    repo: Annotated[str, typer.Argument(help="A registered repo's name or id.")],
    auto_review: Annotated[
        str | None,
        typer.Option(
            "--auto-review",
            help="Review every new pull request: on, off, or default (the server's setting).",
        ),
    ] = None,
    instructions: Annotated[
        str | None,
        typer.Option(help="Review instructions for the bot ('' clears them)."),
    ] = None,
    instructions_file: Annotated[
        Path | None,
        typer.Option(help="Read the review instructions from this file."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model of review sessions ('' for the default).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a repo's review-bot settings, or change them (admins): what is not given stays."""
    from openinspect.errors import InvalidInput

    async def main() -> int:
        if auto_review is not None and auto_review not in _AUTO_REVIEW:
            raise InvalidInput(
                f"--auto-review is on, off or default, not {auto_review!r}",
                hint="openinspect repos review NAME --auto-review off",
            )
        if instructions is not None and instructions_file is not None:
            raise InvalidInput(
                "Give --instructions or --instructions-file, not both",
                hint="Put long instructions in a file",
            )
        text = instructions
        if instructions_file is not None:
            try:
                text = instructions_file.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInput(
                    f"Cannot read {instructions_file}: {exc.__class__.__name__}",
                    hint="Give a readable UTF-8 text file",
                ) from None
        path = f"/api/repos/{repo}/review-settings"
        async with open_client() as client:
            shown = await client.request("GET", path)
            if (auto_review, text, model) != (None, None, None):
                body = {
                    "auto_review": shown["auto_review"],
                    "instructions": shown["instructions"],
                    "model": shown["model"],
                }
                if auto_review is not None:
                    body["auto_review"] = _AUTO_REVIEW[auto_review]
                if text is not None:
                    body["instructions"] = text.strip() or None
                if model is not None:
                    body["model"] = model.strip() or None
                shown = await client.request("PUT", path, json=body)
        if json_out:
            emit_json(shown)
            return 0
        seen = shown["effective"]

        def said(own: object, value: object) -> str:
            return f"{value}" if own is not None else f"{value} (server default)"

        out = console()
        out.print(f"review settings of {shown['repo']}")
        auto = "on" if seen["auto_review"] else "off"
        out.print(f"  auto-review:  {said(shown['auto_review'], auto)}")
        out.print(f"  model:        {said(shown['model'], seen['model'] or 'the default model')}")
        instructions_shown = seen["instructions"] or "(none)"
        out.print(f"  instructions: {instructions_shown}", markup=False)
        return 0

    run(main())


@repos_app.command("egress")
def repos_egress(
    repo: Annotated[str, typer.Argument(help="A registered repo's name or id.")],
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="Let the repo's boxes reach this host (host, *.domain, host:port, IP:port); "
            "repeatable.",
        ),
    ] = None,
    remove: Annotated[
        list[str] | None,
        typer.Option("--remove", help="Take an entry off the repo's own list; repeatable."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the hosts a repo's boxes may reach through the egress proxy, or change the repo's
    own entries (admins); the server's entries (sandbox.egress.allow) apply to every repo."""

    async def main() -> int:
        path = f"/api/repos/{repo}/egress"
        async with open_client() as client:
            shown = await client.request("GET", path)
            if allow or remove:
                gone = {entry.strip().lower() for entry in remove or []}
                kept = [entry for entry in shown["allow"] if entry not in gone]
                body = {"allow": kept + [entry for entry in allow or [] if entry not in kept]}
                shown = await client.request("PUT", path, json=body)
        if json_out:
            emit_json(shown)
            return 0
        out = console()
        state = "on" if shown["enabled"] else "off (boxes have no network at all)"
        out.print(f"egress of {shown['repo']}: {state}", markup=False)
        out.print(f"  this repo:  {', '.join(shown['allow']) or '(none)'}", markup=False)
        out.print(f"  every repo: {', '.join(shown['server']) or '(none)'}", markup=False)
        return 0

    run(main())


pool_app = typer.Typer(
    help="A repo's warm pool: ready boxes each server keeps, so a session starts on one.",
    rich_markup_mode=None,
)
repos_app.add_typer(pool_app, name="pool")


def _print_pool(shown: dict[str, object]) -> None:
    out = console()
    size = shown["size"]
    state = f"{size} ready box(es) per server" if size else "off"
    out.print(f"warm pool of {shown['repo']}: {state}", markup=False)
    out.print(f"  base branch: {shown['base_branch']}", markup=False)
    out.print(f"  this server: {shown['ready']} ready, {shown['booting']} booting", markup=False)
    out.print(f"  largest allowed: {shown['max_size']}", markup=False)


@pool_app.command("show")
def repos_pool_show(
    repo: Annotated[str, typer.Argument(help="A registered repo's name or id.")],
    json_out: JsonOpt = False,
) -> None:
    """Show a repo's pool size and the boxes of the server that answers."""

    async def main() -> int:
        async with open_client() as client:
            shown = await client.request("GET", f"/api/repos/{repo}/pool")
        if json_out:
            emit_json(shown)
        else:
            _print_pool(shown)
        return 0

    run(main())


@pool_app.command("set")
def repos_pool_set(
    repo: Annotated[str, typer.Argument(help="A registered repo's name or id.")],
    size: Annotated[int, typer.Argument(help="Ready boxes per server; 0 turns the pool off.")],
    json_out: JsonOpt = False,
) -> None:
    """Set a repo's pool size (admins). Each server keeps that many ready boxes of the repo."""

    async def main() -> int:
        async with open_client() as client:
            shown = await client.request("PUT", f"/api/repos/{repo}/pool", json={"size": size})
        if json_out:
            emit_json(shown)
        else:
            _print_pool(shown)
        return 0

    run(main())
