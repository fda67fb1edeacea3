"""What ``openinspect run`` prints once its prompt has finished: where to see the session, what
changed, and how to get the branch."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openinspect.cli.client import Client
from openinspect.cli.repo import is_url
from openinspect.errors import OpenInspectError

if TYPE_CHECKING:
    from rich.console import Console

MAX_FILES_LISTED = 10


def web_url(client: Client, session_id: str) -> str:
    return f"{client.target.url}/sessions/{session_id}"


def diff_stat(files: list[dict[str, Any]]) -> str:
    """``git diff --stat``'s last line: "2 files changed, 3 insertions(+), 1 deletion(-)"."""
    added = sum(f["additions"] for f in files)
    deleted = sum(f["deletions"] for f in files)

    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    return (
        f"{plural(len(files), 'file')} changed, {plural(added, 'insertion')}(+), "
        f"{plural(deleted, 'deletion')}(-)"
    )


def checkout_command(repo_url: str, branch: str, cwd: Path) -> str:
    """The command that puts the session branch in a work tree. A local origin received the
    push itself (it is switched to in place, from anywhere); for a URL the branch is fetched
    into the clone the command runs in."""
    quoted = shlex.quote(branch)
    if is_url(repo_url):
        return f"git fetch {shlex.quote(repo_url)} {quoted}:{quoted} && git switch {quoted}"
    root = Path(repo_url)
    if cwd == root or root in cwd.parents:
        return f"git switch {quoted}"
    return f"git -C {shlex.quote(str(root))} switch {quoted}"


async def print_outcome(
    console: Console, client: Client, session: dict[str, Any], cwd: Path
) -> None:
    from rich.markup import escape

    console.print(f"[bold]web[/]       {web_url(client, session['id'])}", soft_wrap=True)
    try:
        diff = await client.request("GET", f"/api/sessions/{session['id']}/diff")
    except OpenInspectError as exc:
        console.print(f"[bold]changes[/]   unavailable: {escape(exc.message)}")
        return
    files: list[dict[str, Any]] = diff["files"]
    if not files:
        console.print(
            f"[bold]changes[/]   none: {escape(session['branch'])} matches "
            f"{escape(session['base_branch'])}"
        )
        return
    console.print(f"[bold]changes[/]   {diff_stat(files)}")
    for f in files[:MAX_FILES_LISTED]:
        counts = f"[green]+{f['additions']}[/] [red]-{f['deletions']}[/]"
        console.print(f"  {counts}  {escape(f['path'])}")
    if len(files) > MAX_FILES_LISTED:
        console.print(f"  … and {len(files) - MAX_FILES_LISTED} more")
    command = checkout_command(session["repo_url"], session["branch"], cwd)
    console.print(f"[bold]checkout[/]  {escape(command)}", soft_wrap=True)
