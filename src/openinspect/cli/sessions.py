"""``openinspect sessions …``: list, show, watch and steer sessions."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openinspect.cli.output import console, emit_json, open_client, print_table, run, table

sessions_app = typer.Typer(
    help="List, watch and steer sessions.", no_args_is_help=True, rich_markup_mode=None
)
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]
SessionArg = Annotated[str, typer.Argument(help="The session's id (ses_…).")]


def header(session: dict[str, Any]) -> str:
    """One line naming a session, the repository it works on and its branch."""
    from rich.markup import escape

    return (
        f"[bold]{escape(session['title'])}[/] · {session['status']} · sandbox "
        f"{session['sandbox_status']} · ${session['total_cost_usd']:.4f}\n"
        f"  repo {escape(session['repo_url'])} ([cyan]{escape(session['base_branch'])}[/] → "
        f"[cyan]{escape(session['branch'])}[/])\n"
        f"  started from {escape(started_from(session))}"
    )


def started_from(session: dict[str, Any]) -> str:
    """The door a session was started through, and what outside asked for it if anything."""
    origin = str(session.get("origin") or "api")
    ref = session.get("origin_ref")
    return f"{origin} ({ref})" if ref else origin


@sessions_app.command("list")
def sessions_list(
    mine: Annotated[bool, typer.Option("--mine", help="Only sessions I created.")] = False,
    archived: Annotated[
        bool, typer.Option("--archived", help="The archived sessions (hidden otherwise).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Recent sessions, newest first."""

    async def main() -> int:
        async with open_client() as client:
            data = await client.request(
                "GET", "/api/sessions", params={"mine": mine, "archived": archived}
            )
        if json_out:
            for session in data["sessions"]:
                emit_json(session)
            return 0
        grid = table("id", "status", "sandbox", "repo", "title", "from", "cost", "updated")
        for s in data["sessions"]:
            grid.add_row(
                s["id"],
                s["status"],
                s["sandbox_status"],
                s["repo_url"],
                s["title"],
                started_from(s),
                f"${s['total_cost_usd']:.4f}",
                s["updated_at"][:16].replace("T", " "),
            )
        print_table(grid)
        return 0

    run(main())


@sessions_app.command("show")
def sessions_show(session_id: SessionArg, json_out: JsonOpt = False) -> None:
    """A session, its queue and its history."""
    from openinspect.cli.render import Renderer

    async def main() -> int:
        async with open_client() as client:
            data = await client.request("GET", f"/api/sessions/{session_id}")
            renderer = Renderer(console(), json_mode=json_out)
            if json_out:
                emit_json(data["session"])
            else:
                console().print(header(data["session"]))
            async for event in client.events(session_id):
                renderer.event(event)
        return 0

    run(main())


@sessions_app.command("watch")
def sessions_watch(session_id: SessionArg, json_out: JsonOpt = False) -> None:
    """Stream a session live (Ctrl+C to leave; the session keeps going)."""
    from openinspect.cli.render import Renderer, watch

    async def main() -> int:
        async with open_client() as client:
            await watch(client, session_id, Renderer(console(), json_mode=json_out))
        return 0

    run(main())


@sessions_app.command("prompt")
def sessions_prompt(
    session_id: SessionArg,
    text: Annotated[str, typer.Argument(help="The prompt.")],
    model: Annotated[str | None, typer.Option(help="provider:model for this prompt.")] = None,
    effort: Annotated[str | None, typer.Option(help="Reasoning effort for this prompt.")] = None,
    no_follow: Annotated[
        bool, typer.Option("--no-follow", help="Queue it and return instead of streaming.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Send a follow-up prompt to a session and stream it until it finishes."""
    from openinspect.cli.render import Renderer, watch

    async def main() -> int:
        async with open_client() as client:
            # Read where the log stands first, so the watch starts right before this prompt.
            session = (await client.request("GET", f"/api/sessions/{session_id}"))["session"]
            prompt = await client.post_prompt(session_id, content=text, model=model, effort=effort)
            if no_follow:
                if json_out:
                    emit_json(prompt)
                else:
                    console().print(f"queued {prompt['id']}")
                    console().print(
                        f"[dim]cancel it with: openinspect sessions cancel {session_id} "
                        f"{prompt['id']}[/]"
                    )
                return 0
            renderer = Renderer(console(), json_mode=json_out)

            def done(event: dict[str, Any]) -> bool:
                return event.get("prompt_id") == prompt["id"] and event["type"] in (
                    "prompt-finished",
                    "prompt-cancelled",
                )

            last = await watch(
                client, session_id, renderer, until=done, since_seq=session["last_seq"]
            )
            return 0 if last is not None and last.get("status") == "success" else 1

    run(main())


@sessions_app.command("stop")
def sessions_stop(session_id: SessionArg, json_out: JsonOpt = False) -> None:
    """Stop the running prompt of a session (queued ones then run; see cancel)."""

    async def main() -> int:
        async with open_client() as client:
            result = await client.request("POST", f"/api/sessions/{session_id}/stop")
        if json_out:
            emit_json(result)
        else:
            console().print("stopped" if result["stopped"] else "nothing was running")
        return 0

    run(main())


def _patch(session_id: str, body: dict[str, Any], json_out: bool, done: str) -> None:
    async def main() -> int:
        async with open_client() as client:
            data = await client.request("PATCH", f"/api/sessions/{session_id}", json=body)
        if json_out:
            emit_json(data["session"])
        else:
            console().print(f"{done} {session_id}", markup=False, highlight=False)
        return 0

    run(main())


@sessions_app.command("archive")
def sessions_archive(session_id: SessionArg, json_out: JsonOpt = False) -> None:
    """Archive a session: hidden from the list, its sandbox stopped (refused while a prompt is
    queued or running)."""
    _patch(session_id, {"archived": True}, json_out, "archived")


@sessions_app.command("unarchive")
def sessions_unarchive(session_id: SessionArg, json_out: JsonOpt = False) -> None:
    """Bring an archived session back; it takes prompts again."""
    _patch(session_id, {"archived": False}, json_out, "unarchived")


@sessions_app.command("rename")
def sessions_rename(
    session_id: SessionArg,
    title: Annotated[str, typer.Argument(help="The new title (one line, up to 200 characters).")],
    json_out: JsonOpt = False,
) -> None:
    """Give a session a new title."""
    _patch(session_id, {"title": title}, json_out, "renamed")


@sessions_app.command("fork")
def sessions_fork(
    session_id: SessionArg,
    at: Annotated[
        int,
        typer.Option(
            "--at", min=1, help="The seq of the event to fork at (see `sessions show --json`)."
        ),
    ],
    title: Annotated[
        str | None, typer.Option("--title", "-t", help="The new session's title.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Start a new session from a session at one of its events: its conversation up to there
    and its commit there, on a branch of its own."""

    async def main() -> int:
        body: dict[str, Any] = {"at_seq": at}
        if title is not None:
            body["title"] = title
        async with open_client() as client:
            data = await client.request("POST", f"/api/sessions/{session_id}/fork", json=body)
        session = data["session"]
        if json_out:
            emit_json(session)
        else:
            console().print(
                f"forked {session_id} at event {at}: {session['id']} on {session['branch']}",
                markup=False,
                highlight=False,
            )
        return 0

    run(main())


@sessions_app.command("cancel")
def sessions_cancel(
    session_id: SessionArg,
    prompt_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Queued prompts to cancel (prm_…); default: every queued one."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Cancel queued prompts before they start (stop ends the running one)."""

    async def main() -> int:
        async with open_client() as client:
            targets = prompt_ids
            if not targets:
                queue = (await client.request("GET", f"/api/sessions/{session_id}"))["queue"]
                targets = [p["id"] for p in queue if p["status"] == "queued"]
            for prompt_id in targets:
                cancelled = await client.request(
                    "POST", f"/api/sessions/{session_id}/prompts/{prompt_id}/cancel"
                )
                if json_out:
                    emit_json(cancelled)
                else:
                    console().print(f"cancelled {cancelled['id']}")
        if not targets and not json_out:
            console().print("nothing was queued")
        return 0

    run(main())


@sessions_app.command("pr")
def sessions_pr(
    session_id: SessionArg,
    title: Annotated[str, typer.Option("--title", "-t", help="Pull request title.")],
    body: Annotated[str, typer.Option("--body", "-b", help="Markdown body.")] = "",
    draft: Annotated[bool, typer.Option("--draft", help="Open it as a draft.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Open the session branch's pull request as you (or update the open one)."""

    async def main() -> int:
        async with open_client() as client:
            pr = await client.request(
                "POST",
                f"/api/sessions/{session_id}/pull-request",
                json={"title": title, "body": body, "draft": draft},
            )
        if json_out:
            emit_json(pr)
        else:
            console().print(f"#{pr['number']} {pr['state']}: {pr['url']}")
        return 0

    run(main())
