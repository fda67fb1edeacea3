"""The ``openinspect`` command."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from openinspect.cli.client import ApiError, Client, discover
from openinspect.cli.render import Renderer, watch
from openinspect.errors import OpenInspectError

app = typer.Typer(help="openinspect: background coding agents on your repos.", no_args_is_help=True)
sessions_app = typer.Typer(help="List, watch and steer sessions.", no_args_is_help=True)
testing_app = typer.Typer(help="Local fakes for development and tests.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")
app.add_typer(testing_app, name="testing")

console = Console()
err_console = Console(stderr=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


def _run(coro: Coroutine[Any, Any, int | None]) -> None:
    try:
        code = asyncio.run(coro)
    except OpenInspectError as exc:
        error_code = exc.api_code if isinstance(exc, ApiError) else exc.code
        err_console.print(f"[red]error \\[{error_code}]:[/] {escape(exc.message)}")
        if exc.hint:
            err_console.print(f"[dim]hint: {escape(exc.hint)}[/]")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    raise typer.Exit(code or 0)


def _emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (0 picks a free one).")] = None,
) -> None:
    """Run the control plane; prints its URL and the admin token."""
    from openinspect.cli.serve import run_server

    _run(run_server(console, host=host, port=port))


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="Keep the demo's temporary files.")] = False,
) -> None:
    """Offline, self-contained demo: a scripted agent fixes a bug in a sample repo."""
    from openinspect.cli.demo import run_demo

    _run(run_demo(console, keep=keep))


@app.command()
def run(
    prompt: Annotated[str, typer.Argument(help="What the agent should do.")],
    repo: Annotated[str, typer.Option(help="Registered repo, local path or git URL.")],
    branch: Annotated[str | None, typer.Option(help="Base branch.")] = None,
    model: Annotated[str | None, typer.Option(help="provider:model")] = None,
    effort: Annotated[str | None, typer.Option(help="Reasoning effort.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Start a session with a prompt, stream it live, exit when the prompt finishes."""

    async def main() -> int:
        async with Client(discover()) as client:
            created = await client.create_session(
                repo=repo,
                base_branch=branch,
                model=model,
                effort=effort,
                title=prompt[:80],
                prompt=prompt,
            )
            session_id, prompt_id = created["session"]["id"], created["prompt"]["id"]
            renderer = Renderer(console, json_mode=json_out)
            return await _follow(client, session_id, prompt_id, renderer)

    _run(main())


async def _follow(client: Client, session_id: str, prompt_id: str, renderer: Renderer) -> int:
    def done(event: dict[str, Any]) -> bool:
        return event["type"] in ("prompt-finished", "prompt-cancelled") and (
            event.get("prompt_id") == prompt_id
        )

    if renderer.json_mode:
        last = await watch(client, session_id, renderer, until=done)
    else:
        with console.status("starting…") as status:
            renderer.status = status
            last = await watch(client, session_id, renderer, until=done)
    return 0 if last is not None and last.get("status") == "success" else 1


@sessions_app.command("list")
def sessions_list(
    mine: Annotated[bool, typer.Option(help="Only sessions I created.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Recent sessions, newest first."""

    async def main() -> int:
        async with Client(discover()) as client:
            data = await client.request("GET", "/api/sessions", params={"mine": mine})
        if json_out:
            for session in data["sessions"]:
                _emit_json(session)
            return 0
        table = Table("id", "status", "sandbox", "repo", "branch", "title", "cost", "updated")
        for s in data["sessions"]:
            table.add_row(
                s["id"],
                s["status"],
                s["sandbox_status"],
                s["repo_url"],
                s["branch"],
                s["title"],
                f"${s['total_cost_usd']:.4f}",
                s["updated_at"][:19],
            )
        console.print(table)
        return 0

    _run(main())


@sessions_app.command("show")
def sessions_show(session_id: str, json_out: JsonOpt = False) -> None:
    """A session, its queue and its history."""

    async def main() -> int:
        async with Client(discover()) as client:
            data = await client.request("GET", f"/api/sessions/{session_id}")
            renderer = Renderer(console, json_mode=json_out)
            if json_out:
                _emit_json(data["session"])
            else:
                s = data["session"]
                console.print(
                    f"[bold]{s['title']}[/] · {s['status']} · sandbox "
                    f"{s['sandbox_status']} · ${s['total_cost_usd']:.4f}"
                )
            async for event in client.events(session_id):
                renderer.event(event)
        return 0

    _run(main())


@sessions_app.command("watch")
def sessions_watch(session_id: str, json_out: JsonOpt = False) -> None:
    """Stream a session live (Ctrl+C to leave; the session keeps going)."""

    async def main() -> int:
        async with Client(discover()) as client:
            await watch(client, session_id, Renderer(console, json_mode=json_out))
        return 0

    _run(main())


@sessions_app.command("prompt")
def sessions_prompt(
    session_id: str,
    text: str,
    model: Annotated[str | None, typer.Option(help="provider:model for this prompt.")] = None,
    effort: Annotated[str | None, typer.Option(help="Reasoning effort for this prompt.")] = None,
    follow: Annotated[bool, typer.Option(help="Stream until the prompt finishes.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Send a follow-up prompt to a session."""

    async def main() -> int:
        async with Client(discover()) as client:
            # Read where the log stands first, so the watch starts right before this prompt.
            session = (await client.request("GET", f"/api/sessions/{session_id}"))["session"]
            prompt = await client.post_prompt(session_id, content=text, model=model, effort=effort)
            if not follow:
                _emit_json(prompt) if json_out else console.print(f"queued {prompt['id']}")
                return 0
            renderer = Renderer(console, json_mode=json_out)

            def done(event: dict[str, Any]) -> bool:
                return event.get("prompt_id") == prompt["id"] and event["type"] in (
                    "prompt-finished",
                    "prompt-cancelled",
                )

            last = await watch(
                client, session_id, renderer, until=done, since_seq=session["last_seq"]
            )
            return 0 if last is not None and last.get("status") == "success" else 1

    _run(main())


@sessions_app.command("stop")
def sessions_stop(session_id: str, json_out: JsonOpt = False) -> None:
    """Stop the running prompt of a session."""

    async def main() -> int:
        async with Client(discover()) as client:
            result = await client.request("POST", f"/api/sessions/{session_id}/stop")
        _emit_json(result) if json_out else console.print(
            "stopped" if result["stopped"] else "nothing was running"
        )
        return 0

    _run(main())


@sessions_app.command("pr")
def sessions_pr(
    session_id: str,
    title: Annotated[str, typer.Option("--title", "-t", help="Pull request title.")],
    body: Annotated[str, typer.Option("--body", "-b", help="Markdown body.")] = "",
    draft: Annotated[bool, typer.Option("--draft", help="Open it as a draft.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Open the session branch's pull request as you (or update the open one)."""

    async def main() -> int:
        async with Client(discover()) as client:
            pr = await client.request(
                "POST",
                f"/api/sessions/{session_id}/pull-request",
                json={"title": title, "body": body, "draft": draft},
            )
        if json_out:
            _emit_json(pr)
        else:
            console.print(f"#{pr['number']} {pr['state']}: {pr['url']}")
        return 0

    _run(main())


@app.command()
def doctor(json_out: JsonOpt = False) -> None:
    """Check this machine: bubblewrap, git, the database, model settings."""
    from openinspect.cli.doctor import run_doctor

    _run(run_doctor(console, json_mode=json_out))


@testing_app.command("llm-server")
def llm_server(
    script: Annotated[Path, typer.Option(help="Script file (JSON).", exists=True)],
    port: Annotated[int, typer.Option(help="TCP port.")] = 8900,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
) -> None:
    """Run the scripted LLM server (OpenAI and Anthropic wire protocols) in the foreground."""
    from openinspect.testing.llm_server import serve as serve_llm

    serve_llm(script, host=host, port=port)


@testing_app.command("github-server")
def github_server(
    data: Annotated[Path, typer.Option("--data", help="Directory for its state and repos.")],
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8901,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    repo: Annotated[
        list[str] | None,
        typer.Option("--repo", help="owner/name=PATH: import the git repo at PATH (repeatable)."),
    ] = None,
    user: Annotated[
        list[str] | None, typer.Option("--user", help="A GitHub user to create (repeatable).")
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option(help="Deliver webhooks here (e.g. http://…/webhooks/github).")
    ] = None,
) -> None:
    """Run the fake GitHub (REST API, OAuth, webhooks, git) in the foreground; prints the
    OPENINSPECT_GITHUB__* settings that point a server at it."""
    from openinspect.testing.github.cli import serve as serve_github

    try:
        serve_github(
            data_dir=data,
            port=port,
            host=host,
            repos=repo or [],
            users=user or [],
            webhook_url=webhook_url,
        )
    except ValueError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


tokens_app = typer.Typer(help="Your API tokens on the server.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
UrlOpt = Annotated[
    str | None, typer.Option("--url", help="Server URL (default: OPENINSPECT_URL or the current).")
]


@app.command()
def login(
    url: UrlOpt = None,
    token: Annotated[
        str | None, typer.Option(help="Keep this API token instead of signing in with GitHub.")
    ] = None,
) -> None:
    """Sign in to a server with GitHub (device flow), or keep a token you already have."""
    from openinspect.cli import login as flows
    from openinspect.settings import Settings

    settings = Settings()
    target = flows.server_url(url, settings)
    if token:
        _run(flows.token_login(console, settings, target, token))
    else:
        _run(flows.device_login(console, settings, target))


@app.command()
def logout(url: UrlOpt = None) -> None:
    """Revoke this CLI's token on the server and forget it."""
    from openinspect.cli import login as flows
    from openinspect.settings import Settings

    settings = Settings()
    _run(flows.logout(console, settings, flows.server_url(url, settings)))


@tokens_app.command("list")
def tokens_list(json_out: JsonOpt = False) -> None:
    """Your tokens (not the secrets: those are shown once, at creation)."""
    from openinspect.cli import login as flows

    _run(flows.tokens_list(console, json_out))


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="What the token is for.")],
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, help="Expire after this many days.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Mint an API token for scripts and print it (once)."""
    from openinspect.cli import login as flows

    _run(flows.tokens_create(console, name, expires_days, json_out))


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[str, typer.Argument(help="The token's id (tok_…).")]) -> None:
    """Revoke one of your tokens."""
    from openinspect.cli import login as flows

    _run(flows.tokens_revoke(console, token_id))


def main() -> None:
    app()
