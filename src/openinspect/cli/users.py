"""``openinspect users``: the people of the server (admins): list them, add one, and mint a
one-time sign-in link for someone instead of sharing the admin token."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openinspect.cli.output import console, emit_json, open_client, print_table, run, table
from openinspect.cli.sessions import JsonOpt

users_app = typer.Typer(
    help="People on the server (admins): add someone, send them a sign-in link.",
    rich_markup_mode=None,
)
ROLES = ("member", "admin")


@users_app.callback(invoke_without_command=True)
def users_list(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List the users (or: users add NAME --email E; users login-link USER)."""
    if ctx.invoked_subcommand is not None:
        return

    async def main() -> int:
        async with open_client() as client:
            data = await client.request("GET", "/api/users")
        if json_out:
            for user in data["users"]:
                emit_json(user)
            return 0
        grid = table("id", "name", "email", "role")
        for u in data["users"]:
            grid.add_row(u["id"], u["name"], u["email"], u["role"])
        print_table(grid)
        return 0

    run(main())


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Their name, as shown and written into commits.")],
    email: Annotated[str, typer.Option("--email", help="Their email address.")],
    role: Annotated[str, typer.Option(help="member or admin.")] = "member",
    json_out: JsonOpt = False,
) -> None:
    """Add a person (admins only); then send them `openinspect users login-link`."""
    from openinspect.errors import InvalidInput

    async def main() -> int:
        if role not in ROLES:
            raise InvalidInput(f"Unknown role {role!r}", hint="Use --role member or --role admin")
        async with open_client() as client:
            created = await client.request(
                "POST", "/api/users", json={"name": name, "email": email, "role": role}
            )
        if json_out:
            emit_json(created)
        else:
            console().print(
                f"added {created['name']} <{created['email']}> ({created['id']}, "
                f"{created['role']}); sign-in link: openinspect users login-link {created['id']}"
            )
        return 0

    run(main())


def _find(users: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    """A user by id, or else by email (any case); ``InvalidInput`` naming the choices."""
    from openinspect.errors import InvalidInput, NotFoundError

    by_id = [u for u in users if u["id"] == wanted]
    matches = by_id or [u for u in users if u["email"].lower() == wanted.lower()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        ids = ", ".join(u["id"] for u in matches)
        raise InvalidInput(f"Several users have the email {wanted!r}: {ids}", hint="Give the id")
    raise NotFoundError(f"No user {wanted!r}", hint="List them with: openinspect users")


@users_app.command("login-link")
def users_login_link(
    user: Annotated[str, typer.Argument(help="The user's id (usr_…) or email.")],
    json_out: JsonOpt = False,
) -> None:
    """Print a one-time sign-in link for a user (admins only): opened in a browser, it signs
    them in to the web app once. A new link voids their older unused one."""

    async def main() -> int:
        async with open_client() as client:
            listed = await client.request("GET", "/api/users")
            target = _find(listed["users"], user)
            minted = await client.request("POST", f"/api/users/{target['id']}/login-links")
        if json_out:
            emit_json(minted)
            return 0
        console().print(
            f"sign-in link for {target['name']} <{target['email']}>, usable once until "
            f"{minted['expires_at']}:",
            highlight=False,
        )
        # Alone on its line, unwrapped, so it can be copied whole.
        console().print(minted["url"], soft_wrap=True, highlight=False)
        return 0

    run(main())
