"""The ``openinspect`` command.

Start-up is part of the interface: this module imports typer and nothing else heavy. Each command
imports what it needs when it runs; the client commands never import the server (FastAPI,
SQLAlchemy, pydantic-ai…), which ``tests/cli/test_startup.py`` checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from openinspect.cli.automations import automations_app
from openinspect.cli.limits import limits_app
from openinspect.cli.mcp import mcp_app
from openinspect.cli.output import console, err_console, run
from openinspect.cli.repos import repos_app
from openinspect.cli.secrets import secrets_app
from openinspect.cli.sessions import JsonOpt, sessions_app
from openinspect.cli.skills import skills_app
from openinspect.cli.users import users_app

if TYPE_CHECKING:
    from openinspect.cli.client import Client
    from openinspect.cli.render import Renderer

# Plain help, not rich panels: it starts faster and prints flags as flags ("--json", where the
# panels say "--json <bool>" as if it took a value).
app = typer.Typer(
    help="openinspect: background coding agents on your repos.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
testing_app = typer.Typer(
    help="Local fakes for development and tests.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(sessions_app, name="sessions")
app.add_typer(repos_app, name="repos")
app.add_typer(secrets_app, name="secrets")
app.add_typer(limits_app, name="limits")
app.add_typer(skills_app, name="skills")
app.add_typer(mcp_app, name="mcp")
app.add_typer(users_app, name="users")
app.add_typer(automations_app, name="automations")
app.add_typer(testing_app, name="testing")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (0 picks a free one).")] = None,
) -> None:
    """Run the control plane; prints its URL and the admin token."""
    from openinspect.cli.serve import run_server

    run(run_server(console(), host=host, port=port))


@app.command()
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep the demo's temporary files.")] = False,
) -> None:
    """Offline, self-contained demo: a scripted agent fixes a bug in a sample repo, on a
    throwaway server of its own."""
    from openinspect.cli.demo import run_demo

    run(run_demo(console(), keep=keep))


@app.command("run")
def run_prompt(
    prompt: Annotated[str, typer.Argument(help="What the agent should do.")],
    repo: Annotated[
        str | None,
        typer.Option(
            help="Local path (default: the git repository you are in), git URL, or the name "
            "of a registered repo."
        ),
    ] = None,
    branch: Annotated[str | None, typer.Option(help="Base branch.")] = None,
    model: Annotated[str | None, typer.Option(help="provider:model")] = None,
    effort: Annotated[str | None, typer.Option(help="Reasoning effort.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Start a session with a prompt, stream it live, exit when the prompt finishes; then print
    the session's web page, what changed and the command to check the branch out."""
    from openinspect.cli.client import Client, discover
    from openinspect.cli.render import Renderer
    from openinspect.cli.repo import check_registered, resolve_repo
    from openinspect.cli.summary import print_outcome

    async def main() -> int:
        cwd = Path.cwd()
        choice = resolve_repo(repo, cwd)
        async with Client(discover()) as client:
            if choice.name is not None:
                listed = await client.request("GET", "/api/repos")
                check_registered(choice, listed["repos"], cwd)
            created = await client.create_session(
                repo=choice.value,
                base_branch=branch,
                model=model,
                effort=effort,
                title=prompt[:80],
                prompt=prompt,
            )
            session, prompt_id = created["session"], created["prompt"]["id"]
            renderer = Renderer(console(), json_mode=json_out)
            code = await _follow(client, session["id"], prompt_id, renderer)
            if not json_out:
                await print_outcome(console(), client, session, cwd)
            return code

    run(main())


async def _follow(client: Client, session_id: str, prompt_id: str, renderer: Renderer) -> int:
    from openinspect.cli.render import watch

    def done(event: dict[str, Any]) -> bool:
        return event["type"] in ("prompt-finished", "prompt-cancelled") and (
            event.get("prompt_id") == prompt_id
        )

    if renderer.json_mode:
        last = await watch(client, session_id, renderer, until=done)
    else:
        with console().status("starting…") as status:
            renderer.status = status
            last = await watch(client, session_id, renderer, until=done)
    return 0 if last is not None and last.get("status") == "success" else 1


@app.command()
def models(
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list models whose provider is not set up.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """The models the server can run (`run --model ID`), and its default."""
    from openinspect.cli.output import emit_json, open_client, print_table, table

    async def main() -> int:
        async with open_client() as client:
            data = await client.request("GET", "/api/models")
        shown = [m for m in data["models"] if show_all or m["available"]]
        if json_out:
            for entry in shown:
                emit_json({**entry, "default": entry["id"] == data["default"]})
            return 0
        grid = table("id", "label", "efforts", "available")
        for m in shown:
            mark = " (default)" if m["id"] == data["default"] else ""
            usable = "yes" if m["available"] else "no"
            grid.add_row(m["id"] + mark, m["label"], ", ".join(m["efforts"]), usable)
        print_table(grid)
        console().print(f"default: {data['default']}")
        if not show_all and len(shown) < len(data["models"]):
            console().print("more need a key or URL on the server: openinspect models --all")
        return 0

    run(main())


@app.command()
def doctor(json_out: JsonOpt = False) -> None:
    """Check this machine: bubblewrap, git, the database, model providers, the server."""
    from openinspect.cli.doctor import run_doctor

    run(run_doctor(console(), json_mode=json_out))


@testing_app.command("llm-server")
def llm_server(
    script: Annotated[Path, typer.Option(help="Script file (JSON).", exists=True)],
    port: Annotated[int, typer.Option(help="TCP port.")] = 8900,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
) -> None:
    """Run the scripted LLM server (OpenAI and Anthropic wire protocols) in the foreground."""
    from openinspect.testing.llm_server import serve as serve_llm

    serve_llm(script, host=host, port=port)


@testing_app.command("mcp-server")
def mcp_server(
    token: Annotated[str, typer.Option(help="The bearer credential it requires.")],
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8904,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
) -> None:
    """Run the fake remote MCP server (streamable HTTP, official SDK) in the foreground: tools
    lookup_ticket, echo and big, behind a bearer credential."""
    from openinspect.testing.mcp_server import serve as serve_mcp

    serve_mcp(token=token, host=host, port=port)


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
        from rich.markup import escape

        err_console().print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


# The fake Slack's well-known test credentials (nothing real is ever signed with them).
FAKE_SLACK_SECRET = "s3cret"  # noqa: S105
FAKE_SLACK_BOT_TOKEN = "xoxb-test"  # noqa: S105
FAKE_SLACK_APP_TOKEN = "xapp-test"  # noqa: S105


@testing_app.command("slack-server")
def slack_server(
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8902,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    signing_secret: Annotated[
        str, typer.Option(help="Signs the events and interactions it sends.")
    ] = FAKE_SLACK_SECRET,
    bot_token: Annotated[
        str, typer.Option(help="The bot token (xoxb-…) it accepts.")
    ] = FAKE_SLACK_BOT_TOKEN,
    app_token: Annotated[
        str, typer.Option(help="The app token (xapp-…) for Socket Mode.")
    ] = FAKE_SLACK_APP_TOKEN,
    events_url: Annotated[
        str | None, typer.Option(help="Deliver events here (e.g. http://…/slack/events).")
    ] = None,
    interactions_url: Annotated[
        str | None, typer.Option(help="Deliver interactions here (…/slack/interactions).")
    ] = None,
    user: Annotated[
        list[str] | None,
        typer.Option(
            "--user", help="ID:name[:email], e.g. U1:alice:alice@example.com (repeatable)."
        ),
    ] = None,
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="ID:name, e.g. C1:eng (repeatable).")
    ] = None,
) -> None:
    """Run the fake Slack (Web API, Events API, interactivity, Socket Mode) in the foreground;
    prints the OPENINSPECT_SLACK__* settings that point a server at it."""
    from openinspect.testing.slack.cli import serve as serve_slack

    try:
        serve_slack(
            port=port,
            host=host,
            signing_secret=signing_secret,
            bot_token=bot_token,
            app_token=app_token,
            events_url=events_url,
            interactions_url=interactions_url,
            users=user or [],
            channels=channel or [],
        )
    except ValueError as exc:
        from rich.markup import escape

        err_console().print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


# The fake Linear's well-known test credentials (nothing real is ever signed with them).
FAKE_LINEAR_CLIENT_ID = "fake-linear-client"
FAKE_LINEAR_CLIENT_SECRET = "fake-linear-secret"  # noqa: S105
FAKE_LINEAR_WEBHOOK_SECRET = "fake-linear-webhook-secret"  # noqa: S105


@testing_app.command("linear-server")
def linear_server(
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8903,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    webhook_url: Annotated[
        str | None, typer.Option(help="Deliver webhooks here (e.g. http://…/webhooks/linear).")
    ] = None,
    webhook_secret: Annotated[
        str, typer.Option(help="Signs the webhooks it sends.")
    ] = FAKE_LINEAR_WEBHOOK_SECRET,
    client_id: Annotated[str, typer.Option(help="The OAuth client id it accepts.")] = (
        FAKE_LINEAR_CLIENT_ID
    ),
    client_secret: Annotated[
        str, typer.Option(help="The OAuth client secret it accepts.")
    ] = FAKE_LINEAR_CLIENT_SECRET,
) -> None:
    """Run the fake Linear (GraphQL, OAuth, signed agent session webhooks) in the foreground;
    prints the OPENINSPECT_LINEAR__* settings that point a server at it."""
    from openinspect.testing.linear.cli import serve as serve_linear

    try:
        serve_linear(
            port=port,
            host=host,
            client_id=client_id,
            client_secret=client_secret,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        )
    except ValueError as exc:
        from rich.markup import escape

        err_console().print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


@testing_app.command("sentry-send")
def sentry_send(
    url: Annotated[str, typer.Option(help="Where to POST (e.g. http://…/webhooks/sentry/ID).")],
    secret: Annotated[str, typer.Option(help="The integration's client secret to sign with.")],
    resource: Annotated[str, typer.Option(help="issue | event_alert | metric_alert.")] = "issue",
    action: Annotated[
        str | None,
        typer.Option(
            help="issue: created | regressed; event_alert: triggered; "
            "metric_alert: critical | warning | resolved (default: the first)."
        ),
    ] = None,
    issue_id: Annotated[str, typer.Option(help="The Sentry issue id.")] = "1001",
    title: Annotated[str | None, typer.Option(help="Issue title (metric: rule name).")] = None,
    project: Annotated[str | None, typer.Option(help="Project slug.")] = None,
    level: Annotated[str | None, typer.Option(help="error, warning, fatal…")] = None,
    rule_id: Annotated[str, typer.Option(help="metric_alert: the alert rule id.")] = "7",
) -> None:
    """Send one webhook signed as Sentry signs them (the fake Sentry); prints the answer and
    exits 1 unless it is a 2xx."""
    import httpx
    from rich.markup import escape

    from openinspect.testing.sentry.cli import run as send_sentry

    try:
        delivery = send_sentry(
            url=url,
            secret=secret,
            resource=resource,
            action=action,
            issue_id=issue_id,
            title=title,
            project=project,
            level=level,
            rule_id=rule_id,
        )
    except ValueError as exc:
        err_console().print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    except httpx.HTTPError as exc:
        err_console().print(f"[red]error:[/] could not reach {escape(url)}: {escape(str(exc))}")
        raise typer.Exit(1) from None
    if not 200 <= delivery.status_code < 300:
        raise typer.Exit(1)


tokens_app = typer.Typer(
    help="Your API tokens on the server.", no_args_is_help=True, rich_markup_mode=None
)
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
    from openinspect.cli.local import home_dir

    home = home_dir()
    target = flows.server_url(url, home)
    if token:
        run(flows.token_login(console(), home, target, token))
    else:
        run(flows.device_login(console(), home, target))


@app.command()
def logout(url: UrlOpt = None) -> None:
    """Revoke this CLI's token on the server and forget it."""
    from openinspect.cli import login as flows
    from openinspect.cli.local import home_dir

    home = home_dir()
    run(flows.logout(console(), home, flows.server_url(url, home)))


@tokens_app.command("list")
def tokens_list(json_out: JsonOpt = False) -> None:
    """Your tokens (not the secrets: those are shown once, at creation)."""
    from openinspect.cli import login as flows

    run(flows.tokens_list(console(), json_out))


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

    run(flows.tokens_create(console(), name, expires_days, json_out))


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[str, typer.Argument(help="The token's id (tok_…).")]) -> None:
    """Revoke one of your tokens."""
    from openinspect.cli import login as flows

    run(flows.tokens_revoke(console(), token_id))


def main() -> None:
    from openinspect.cli.flags import skip_flag_adapters

    skip_flag_adapters()
    app()
