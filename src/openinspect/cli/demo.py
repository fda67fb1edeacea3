"""``openinspect demo``: the whole product, offline, in under a minute.

It makes a small repo with a bug and a failing test, pushes it to a bare origin, starts an embedded
server with its own home, and runs a session whose (scripted) agent reads the code, runs the
tests, fixes the bug and runs them again. The change is committed as the prompting user and pushed
to the session branch; the demo prints the branch, the commit and the diff.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from rich.syntax import Syntax

from openinspect.api.server import Started, serve
from openinspect.cli.client import Client, Target
from openinspect.cli.render import Renderer, watch
from openinspect.settings import SandboxSettings, ServerSettings, Settings
from openinspect.testing.repos import git_output, make_sample_repo
from openinspect.timeouts import wait_for

PROMPT = "The add() function in calc.py is wrong and its test fails. Fix it and run the tests."
DEMO_MODEL = "scripted:demo-fix-add"
"""Shipped in the package (``openinspect/testing/scripts``), so it works without any setting."""


async def run_demo(console: Console, *, keep: bool = False) -> int:
    root = Path(tempfile.mkdtemp(prefix="openinspect-demo-"))
    try:
        origin = make_sample_repo(root)
        settings = Settings(
            home=root / "home",
            server=ServerSettings(port=0),
            sandbox=SandboxSettings(provider="auto"),
        )
        started: asyncio.Future[Started] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        server = asyncio.create_task(
            serve(settings, on_started=started.set_result, install_signal_handlers=False, stop=stop)
        )
        try:
            info = await wait_for(asyncio.shield(started), 30)
            token = info.plane.bootstrap.token
            assert token is not None
            console.print(
                f"[bold]openinspect demo[/] · server {info.url} · sandboxes: "
                f"{info.plane.session_deps.provider.name}"
            )
            return await _session(console, Client(Target(info.url, token)), origin)
        finally:
            stop.set()
            await wait_for(server, 30)
    finally:
        if keep:
            console.print(f"[dim]kept {root}[/]")
        else:
            shutil.rmtree(root, ignore_errors=True)


async def _session(console: Console, client: Client, origin: Path) -> int:
    async with client:
        created = await client.create_session(
            repo=str(origin), model=DEMO_MODEL, title="Fix add()", prompt=PROMPT
        )
        session, prompt = created["session"], created["prompt"]
        renderer = Renderer(console)
        with console.status("starting…") as status:
            renderer.status = status
            last = await watch(
                client,
                session["id"],
                renderer,
                until=lambda e: (
                    e["type"] == "prompt-finished" and e.get("prompt_id") == prompt["id"]
                ),
            )
    if last is None or last.get("status") != "success":
        return 1
    branch = session["branch"]
    log = git_output(
        "log", "-1", "--format=%H%n%an <%ae>%n%cn%n%s", branch, cwd=origin
    ).splitlines()
    diff = git_output("diff", f"main..{branch}", cwd=origin)
    console.rule("result")
    console.print(f"branch   [cyan]{branch}[/] (on the origin {origin})")
    console.print(
        f"commit   [green]{log[0]}[/]\nauthor   {log[1]}\ncommitter {log[2]}\nmessage  {log[3]}"
    )
    console.print(Syntax(diff, "diff", theme="ansi_dark"))
    return 0
