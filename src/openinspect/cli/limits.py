"""``openinspect limits``: spend limits (admins) — a session's budget globally, per repo and per
automation (the most specific one set applies), and what each person may spend per UTC day.

    openinspect limits set global 5            every session: $5 (with its children)
    openinspect limits set repo acme/web 2.5   that repo's sessions
    openinspect limits set automation aut_1 1  that automation's sessions
    openinspect limits set user-daily 20       each person, per UTC day
    openinspect limits set repo acme/web none  remove the limit
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openinspect.cli.output import console, emit_json, open_client, print_table, run, table
from openinspect.cli.sessions import JsonOpt

limits_app = typer.Typer(
    help="Spend limits (admins): global, per repo, per automation, per person and day.",
    rich_markup_mode=None,
    no_args_is_help=True,
)
SCOPES = ("global", "repo", "automation", "user-daily")
TARGETED = ("repo", "automation")


def parse_set(scope: str, rest: list[str]) -> dict[str, Any]:
    """The body of ``PUT /api/limits`` for ``limits set SCOPE [TARGET] USD``."""
    from openinspect.errors import InvalidInput

    usage = "openinspect limits set global|user-daily USD, or repo|automation TARGET USD"
    if scope not in SCOPES:
        raise InvalidInput(f"Not a limit scope: {scope[:40]!r}", hint=usage)
    want = 2 if scope in TARGETED else 1
    if len(rest) != want:
        raise InvalidInput(f"'{scope}' takes {want} argument(s) after it", hint=usage)
    raw = rest[-1]
    usd: float | None
    if raw.lower() in ("none", "off"):
        usd = None
    else:
        try:
            usd = float(raw.removeprefix("$"))
        except ValueError:
            raise InvalidInput(
                "The limit is an amount in US dollars, or 'none'", hint=usage
            ) from None
    body: dict[str, Any] = {"scope": scope, "usd": usd}
    if scope in TARGETED:
        body["target"] = rest[0]
    return body


def _show(data: dict[str, Any], json_out: bool) -> None:
    if json_out:
        for limit in data["limits"]:
            emit_json(limit)
        return
    if not data["limits"]:
        console().print("no spend limits (set one with: openinspect limits set global 5)")
        return
    grid = table("scope", "target", "usd", "updated")
    for x in data["limits"]:
        grid.add_row(
            x["scope"], x["target"] or "", f"${x['usd']:g}", x["updated_at"][:19].replace("T", " ")
        )
    print_table(grid)


@limits_app.command("show")
def limits_show(json_out: JsonOpt = False) -> None:
    """List the spend limits set."""

    async def main() -> int:
        async with open_client() as client:
            data = await client.request("GET", "/api/limits")
        _show(data, json_out)
        return 0

    run(main())


@limits_app.command("set")
def limits_set(
    scope: Annotated[str, typer.Argument(help="global, repo, automation or user-daily.")],
    rest: Annotated[
        list[str],
        typer.Argument(help="[TARGET] USD: the repo or automation, then dollars (or 'none')."),
    ],
    json_out: JsonOpt = False,
) -> None:
    """Set (or with 'none' remove) a spend limit; sessions paused at a limit look again."""

    async def main() -> int:
        body = parse_set(scope, rest)
        async with open_client() as client:
            data = await client.request("PUT", "/api/limits", json=body)
        _show(data, json_out)
        return 0

    run(main())
