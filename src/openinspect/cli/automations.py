"""``openinspect automations …``: sessions started by schedules, webhooks, Sentry alerts and
GitHub events, over ``/api/automations``. How options become triggers and conditions is in
``cli.automation_args``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from openinspect.cli.output import console, emit_json, open_client, print_table, run, table
from openinspect.cli.sessions import JsonOpt

automations_app = typer.Typer(
    help="Automations: sessions started by schedules, webhooks, Sentry alerts, GitHub events.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
AutomationArg = Annotated[str, typer.Argument(help="The automation's id (aut_…).")]
NameOpt = Annotated[str | None, typer.Option("--name", help="A short, telling name.")]
RepoOpt = Annotated[
    str | None, typer.Option("--repo", help="Registered repo name or id, or a git URL.")
]
InstructionsOpt = Annotated[
    str | None, typer.Option("--instructions", help="The task (up to 10,000 characters).")
]
InstructionsFileOpt = Annotated[
    Path | None,
    typer.Option("--instructions-file", help="Read the task from this file.", dir_okay=False),
]
CronOpt = Annotated[
    str | None, typer.Option("--cron", help="Five-field cron expression, e.g. '0 3 * * 1-5'.")
]
PresetOpt = Annotated[
    str | None, typer.Option("--preset", help="hourly, daily, weekly or monthly (with --tz).")
]
TzOpt = Annotated[
    str | None, typer.Option("--tz", help="IANA time zone of the schedule (default: UTC).")
]
ConditionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--condition",
        help="PATH:OP:VALUE (equals, contains, matches), PATH:exists, or a JSON object; "
        "repeatable, all must hold.",
    ),
]
ConcurrencyOpt = Annotated[
    str | None,
    typer.Option(
        "--concurrency", help="While a run is active a firing waits (queue) or not (skip)."
    ),
]
ModelOpt = Annotated[str | None, typer.Option("--model", help="provider:model")]
EffortOpt = Annotated[str | None, typer.Option("--effort", help="Reasoning effort.")]
BranchOpt = Annotated[
    str | None, typer.Option("--base-branch", help="Default: the repo's default branch.")
]
EventOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--github-event",
        help="pull_request.opened, pull_request.synchronize, pull_request.closed, "
        "issue_comment or check_failed (repeatable).",
    ),
]
FilterOpt = Annotated[list[str] | None, typer.Option(help="Repeatable.")]
CONCURRENCY = ("queue", "skip")
RUNS_SHOWN = 20


def _instructions(text: str | None, file: Path | None) -> str | None:
    from openinspect.errors import InvalidInput

    if text is not None and file is not None:
        raise InvalidInput("Give --instructions or --instructions-file, not both")
    if file is None:
        return text
    try:
        return file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Cannot read {file}: {exc}") from None


def _concurrency(value: str | None) -> str | None:
    from openinspect.errors import InvalidInput

    if value is not None and value not in CONCURRENCY:
        raise InvalidInput(f"Unknown concurrency {value!r}", hint="Use queue or skip")
    return value


def _trigger(
    *,
    cron: str | None,
    preset: str | None,
    tz: str | None,
    webhook: bool,
    hmac: bool,
    sentry: bool,
    events: list[str],
    branches: list[str],
    labels: list[str],
    authors: list[str],
    max_fix_attempts: int | None,
) -> dict[str, Any]:
    from openinspect.cli import automation_args as args
    from openinspect.errors import InvalidInput

    chosen = [
        name
        for name, given in (
            ("--cron/--preset", cron is not None or preset is not None),
            ("--webhook", webhook),
            ("--sentry", sentry),
            ("--github-event", bool(events)),
        )
        if given
    ]
    if len(chosen) != 1:
        said = f" (given: {', '.join(chosen)})" if chosen else ""
        raise InvalidInput(
            f"An automation has exactly one trigger{said}",
            hint="Give one of --cron EXPR [--tz ZONE], --preset NAME, --webhook, --sentry, "
            "--github-event KIND",
        )
    if chosen[0] == "--webhook":
        return {"kind": "webhook", "auth": "hmac" if hmac else "bearer"}
    if chosen[0] == "--sentry":
        return {"kind": "sentry"}
    if chosen[0] == "--github-event":
        trigger: dict[str, Any] = {
            "kind": "github",
            "events": args.github_events(events),
            "branches": branches,
            "labels": labels,
            "authors": authors,
        }
        if max_fix_attempts is not None:
            trigger["max_fix_attempts"] = max_fix_attempts
        return trigger
    return args.schedule_trigger(cron, preset, tz)


@automations_app.command("create")
def automations_create(
    name: NameOpt = None,
    repo: RepoOpt = None,
    instructions: InstructionsOpt = None,
    instructions_file: InstructionsFileOpt = None,
    cron: CronOpt = None,
    preset: PresetOpt = None,
    tz: TzOpt = None,
    webhook: Annotated[
        bool, typer.Option("--webhook", help="Fired by POSTs to its URL (a bearer secret).")
    ] = False,
    hmac: Annotated[
        bool,
        typer.Option("--hmac", help="With --webhook: an HMAC-SHA256 signature header instead."),
    ] = False,
    sentry: Annotated[
        bool, typer.Option("--sentry", help="Fired by a Sentry internal integration's alerts.")
    ] = False,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            help="--sentry: the integration's client secret (required). --webhook: your own "
            "secret instead of a generated one.",
        ),
    ] = None,
    github_event: EventOpt = None,
    branch: FilterOpt = None,
    label: FilterOpt = None,
    author: FilterOpt = None,
    max_fix_attempts: Annotated[
        int | None,
        typer.Option(help="Failed-check fixes per pull request (default 3).", min=1),
    ] = None,
    condition: ConditionOpt = None,
    concurrency: ConcurrencyOpt = None,
    model: ModelOpt = None,
    effort: EffortOpt = None,
    base_branch: BranchOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an automation with one trigger. A webhook's URL and secret are printed once."""
    from openinspect.cli.automation_args import parse_condition
    from openinspect.errors import InvalidInput

    async def main() -> int:
        task = _instructions(instructions, instructions_file)
        missing = [
            flag
            for flag, value in (("--name", name), ("--repo", repo), ("--instructions", task))
            if not value
        ]
        if missing:
            raise InvalidInput(f"Missing {', '.join(missing)}", hint="See --help")
        body: dict[str, Any] = {
            "name": name,
            "repo": repo,
            "instructions": task,
            "trigger": _trigger(
                cron=cron,
                preset=preset,
                tz=tz,
                webhook=webhook,
                hmac=hmac,
                sentry=sentry,
                events=github_event or [],
                branches=branch or [],
                labels=label or [],
                authors=author or [],
                max_fix_attempts=max_fix_attempts,
            ),
            "conditions": [parse_condition(c) for c in condition or []],
        }
        optional = {
            "concurrency": _concurrency(concurrency),
            "model": model,
            "effort": effort,
            "base_branch": base_branch,
            "secret": secret,
        }
        body |= {k: v for k, v in optional.items() if v is not None}
        async with open_client() as client:
            created = await client.request("POST", "/api/automations", json=body)
            if json_out:
                emit_json(created)
                return 0
            automation = created["automation"]
            out = console()
            out.print(
                f"created {automation['id']}: {automation['name']}", markup=False, highlight=False
            )
            if created.get("webhook_url"):
                out.print("URL:", created["webhook_url"], soft_wrap=True, highlight=False)
            if created.get("secret"):
                out.print("secret:", created["secret"], soft_wrap=True, highlight=False)
                out.print(
                    "Store the secret now: it will not be shown again.",
                    style="bold yellow",
                    highlight=False,
                )
            if automation["trigger"]["kind"] == "schedule":
                await _print_firings(client, automation["trigger"])
        return 0

    run(main())


async def _print_firings(client: Any, trigger: dict[str, Any]) -> None:
    from openinspect.cli.automation_args import firing

    preview = await client.request(
        "GET", "/api/automations/preview", params={"cron": trigger["cron"], "tz": trigger["tz"]}
    )
    console().print(f"next firings ({preview['tz']}):", highlight=False)
    for moment in preview["next"]:
        console().print(f"  {firing(moment)}", highlight=False)


@automations_app.command("list")
def automations_list(json_out: JsonOpt = False) -> None:
    """Your automations (an admin's: all of them), newest first, with their last run."""

    async def main() -> int:
        from openinspect.cli.automation_args import describe_run, describe_status, describe_trigger

        async with open_client() as client:
            data = await client.request("GET", "/api/automations", params={"limit": 200})
        if json_out:
            for automation in data["automations"]:
                emit_json(automation)
            return 0
        if not data["automations"]:
            console().print("no automations (make one with: openinspect automations create)")
            return 0
        grid = table("id", "name", "trigger", "status", "last run")
        for a in data["automations"]:
            grid.add_row(
                a["id"],
                a["name"],
                describe_trigger(a["trigger"]),
                describe_status(a),
                describe_run(a.get("last_run")),
            )
        print_table(grid)
        return 0

    run(main())


@automations_app.command("show")
def automations_show(automation_id: AutomationArg, json_out: JsonOpt = False) -> None:
    """An automation: its trigger, conditions, status, last run and (schedules) next firings."""

    async def main() -> int:
        from openinspect.cli.automation_args import describe_run, describe_status, describe_trigger

        async with open_client() as client:
            automation = await client.request("GET", f"/api/automations/{automation_id}")
            if json_out:
                emit_json(automation)
                return 0
            out = console()
            rows = [
                ("name", automation["name"]),
                ("status", describe_status(automation)),
                ("trigger", describe_trigger(automation["trigger"])),
                ("repo", automation["repo"]),
                ("base branch", automation["base_branch"] or "(the repo's default)"),
                ("model", automation["model"] or "(the server's default)"),
                ("concurrency", automation["concurrency"]),
                ("runs as", automation["run_as"]),
                ("last run", describe_run(automation.get("last_run"))),
            ]
            if automation.get("webhook_url"):
                rows.append(("URL", automation["webhook_url"]))
            out.print(f"{automation['id']}", highlight=False)
            for label, value in rows:
                out.print(f"  {label + ':':<13} {value}", markup=False, highlight=False)
            for c in automation["conditions"]:
                value = "" if c["op"] == "exists" else f" {c.get('value')!r}"
                out.print(f"  condition:    {c['path']} {c['op']}{value}", markup=False)
            out.print("  instructions:", highlight=False)
            for line in automation["instructions"].splitlines():
                out.print(f"    {line}", markup=False, highlight=False)
            if automation["trigger"]["kind"] == "schedule":
                await _print_firings(client, automation["trigger"])
        return 0

    run(main())


@automations_app.command("edit")
def automations_edit(
    automation_id: AutomationArg,
    name: NameOpt = None,
    repo: RepoOpt = None,
    instructions: InstructionsOpt = None,
    instructions_file: InstructionsFileOpt = None,
    cron: CronOpt = None,
    preset: PresetOpt = None,
    tz: TzOpt = None,
    github_event: Annotated[
        list[str] | None,
        typer.Option("--github-event", help="GitHub triggers: the events, replacing the list."),
    ] = None,
    condition: Annotated[
        list[str] | None,
        typer.Option("--condition", help="Replaces every condition (see create)."),
    ] = None,
    no_conditions: Annotated[
        bool, typer.Option("--no-conditions", help="Remove every condition.")
    ] = False,
    concurrency: ConcurrencyOpt = None,
    model: ModelOpt = None,
    effort: EffortOpt = None,
    base_branch: BranchOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Change some of an automation's fields; the others stay. The trigger keeps its kind."""
    from openinspect.cli.automation_args import github_events, parse_condition, schedule_trigger
    from openinspect.errors import InvalidInput

    async def main() -> int:
        body: dict[str, Any] = {
            k: v
            for k, v in {
                "name": name,
                "repo": repo,
                "instructions": _instructions(instructions, instructions_file),
                "concurrency": _concurrency(concurrency),
                "model": model,
                "effort": effort,
                "base_branch": base_branch,
            }.items()
            if v is not None
        }
        if condition and no_conditions:
            raise InvalidInput("Give --condition or --no-conditions, not both")
        if condition or no_conditions:
            body["conditions"] = [parse_condition(c) for c in condition or []]
        async with open_client() as client:
            path = f"/api/automations/{automation_id}"
            if cron is not None or preset is not None or tz is not None or github_event:
                current = (await client.request("GET", path))["trigger"]
                if github_event:
                    if current["kind"] != "github":
                        raise InvalidInput(
                            f"--github-event is for GitHub triggers, not {current['kind']}"
                        )
                    body["trigger"] = current | {"events": github_events(github_event)}
                elif current["kind"] != "schedule":
                    raise InvalidInput(
                        f"--cron, --preset and --tz are for schedules, not {current['kind']}"
                    )
                elif cron is None and preset is None:  # only the zone changes
                    body["trigger"] = current | {"tz": tz}
                else:
                    body["trigger"] = schedule_trigger(cron, preset, tz or current["tz"])
            if not body:
                raise InvalidInput("Nothing to change", hint="See --help for what can change")
            edited = await client.request("PATCH", path, json=body)
            if json_out:
                emit_json(edited)
                return 0
            console().print(f"edited {edited['id']}: {edited['name']}", markup=False)
            if "trigger" in body and edited["trigger"]["kind"] == "schedule":
                await _print_firings(client, edited["trigger"])
        return 0

    run(main())


def _act(automation_id: str, action: str, json_out: bool, done: str) -> None:
    """POST ``/api/automations/<id>/<action>`` and say what happened."""
    from openinspect.cli.automation_args import describe_status

    async def main() -> int:
        async with open_client() as client:
            result = await client.request("POST", f"/api/automations/{automation_id}/{action}")
        if json_out:
            emit_json(result)
        else:
            console().print(f"{done} {automation_id}: {describe_status(result)}", markup=False)
        return 0

    run(main())


@automations_app.command("pause")
def automations_pause(automation_id: AutomationArg, json_out: JsonOpt = False) -> None:
    """Stop it firing (run now still works)."""
    _act(automation_id, "pause", json_out, "paused")


@automations_app.command("resume")
def automations_resume(automation_id: AutomationArg, json_out: JsonOpt = False) -> None:
    """Let it fire again: the failure count resets; missed schedule slots are not caught up."""
    _act(automation_id, "resume", json_out, "resumed")


@automations_app.command("run")
def automations_run(automation_id: AutomationArg, json_out: JsonOpt = False) -> None:
    """Run it now, by hand (also while paused); prints the run and its session."""

    async def main() -> int:
        async with open_client() as client:
            started = await client.request("POST", f"/api/automations/{automation_id}/run")
        if json_out:
            emit_json(started)
            return 0
        session = started.get("session_id")
        console().print(
            f"run {started['id']}: {started['status']}"
            + (f" · session {session}" if session else "")
            + (f" · {started['reason']}" if started.get("reason") else ""),
            markup=False,
            highlight=False,
        )
        if session:
            console().print(f"watch it with: openinspect sessions watch {session}", style="dim")
        return 0 if started["status"] != "failed" else 1

    run(main())


@automations_app.command("delete")
def automations_delete(automation_id: AutomationArg) -> None:
    """Delete an automation and its run history (its sessions stay)."""

    async def main() -> int:
        async with open_client() as client:
            await client.request("DELETE", f"/api/automations/{automation_id}")
        console().print(f"deleted {automation_id}", markup=False, highlight=False)
        return 0

    run(main())


@automations_app.command("runs")
def automations_runs(
    automation_id: AutomationArg,
    limit: Annotated[
        int, typer.Option(help="How many, newest first.", min=1, max=200)
    ] = RUNS_SHOWN,
    json_out: JsonOpt = False,
) -> None:
    """The run history, newest first, with each run's session."""

    async def main() -> int:
        from openinspect.cli.automation_args import when

        async with open_client() as client:
            data = await client.request(
                "GET", f"/api/automations/{automation_id}/runs", params={"limit": limit}
            )
        if json_out:
            for entry in data["runs"]:
                emit_json(entry)
            return 0
        if not data["runs"]:
            console().print(
                f"no runs yet (start one with: openinspect automations run {automation_id})"
            )
            return 0
        grid = table("id", "trigger", "status", "session", "created", "reason")
        for r in data["runs"]:
            why = " ".join(
                x for x in (r.get("error_code") and f"[{r['error_code']}]", r.get("reason")) if x
            )
            grid.add_row(
                r["id"],
                r["trigger"],
                r["status"],
                r.get("session_id") or "",
                when(r["created_at"]),
                why,
            )
        print_table(grid)
        return 0

    run(main())
