"""After a crash: pushes that landed on the origin but never made it into the log.

A push has two halves, the origin taking it and the proxy recording the ``git-push`` event; a
server killed between them leaves the origin ahead of the log. On start, for every prompt that was
running, the origin's tip of each of the session's branches is compared with the last recorded
``git-push``; a tip that is the session's own work (a commit it recorded, or the head the proxy
already noted) and is not in the log yet is recorded as the missing ``git-push``, once: the next
comparison finds it.

A tip that is not the session's (someone pushed to the branch outside openinspect) is left alone.
"""

from __future__ import annotations

import logging

from openinspect.domain.events import GitCommit, GitPush
from openinspect.errors import OpenInspectError
from openinspect.sessions.eventlog import EventLog
from openinspect.sessions.git import git, git_env
from openinspect.sessions.origins import Origins
from openinspect.store import Store
from openinspect.store.leases import Lease

log = logging.getLogger(__name__)
RECENT_GIT_EVENTS = 200
"""How far back the log is searched for the session's commits and pushes."""
LS_REMOTE_TIMEOUT_S = 60.0


async def origin_tips(origins: Origins, origin: str, branches: list[str]) -> dict[str, str]:
    """The origin's heads of ``branches`` (absent ones left out)."""
    env = {**git_env(), **(await origins.git_env(origin))}
    out = await git(
        "ls-remote",
        "--",
        origin,
        *(f"refs/heads/{b}" for b in branches),
        env=env,
        timeout_s=LS_REMOTE_TIMEOUT_S,
    )
    tips: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/"):
            tips[ref.removeprefix("refs/heads/")] = sha.strip()
    return tips


async def reconcile_pushes(
    store: Store,
    events: EventLog,
    origins: Origins,
    session_id: str,
    prompt_id: str | None,
    *,
    fence: Lease | None = None,
) -> list[GitPush]:
    """Record the pushes of ``session_id`` that the origin has and the log lacks, tagged with
    ``prompt_id`` (the prompt that was running). Returns what was recorded."""
    session = await store.sessions.get(session_id)
    if session is None:
        return []
    branches = store.branches
    owned = await branches.claimed(session_id)
    names = sorted({session.branch} | (await branches.names(session_id) & owned))
    try:
        tips = await origin_tips(origins, session.repo_url, names)
    except OpenInspectError as exc:  # git, or the origin's credentials (GitHub down, say)
        log.warning("session %s: cannot read the origin's branches: %s", session_id, exc)
        return []
    recent = await store.events.latest_of(session_id, ("git-commit", "git-push"), RECENT_GIT_EVENTS)
    last_push: dict[str, str] = {}
    for event in recent:  # newest first: the first push seen per branch is the last one
        if isinstance(event, GitPush):
            last_push.setdefault(event.branch, event.sha)
    commits = {e.sha for e in recent if isinstance(e, GitCommit)}
    recorded: list[GitPush] = []
    for branch, tip in tips.items():
        if last_push.get(branch) == tip:
            continue
        if tip not in commits and await branches.head(session_id, branch) != tip:
            log.info("session %s: %s on the origin is not this session's work", session_id, branch)
            continue
        await branches.claim(session_id, session.repo_url, branch)
        await branches.record(session_id, branch, tip)
        push = GitPush(
            session_id=session_id,
            prompt_id=prompt_id,
            sha=tip,
            branch=branch,
            remote=session.repo_url,
        )
        await events.append(push, fence=fence)
        recorded.append(push)
        log.warning(
            "session %s: recorded a push of %s that landed before a crash", session_id, branch
        )
    return recorded
