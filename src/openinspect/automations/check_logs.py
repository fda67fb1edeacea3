"""What an agent is told about a failed check: GitHub's own account of it and the end of its log.

``await report(github, repo, check)`` re-reads the check from GitHub through the server's client
(the App's installation token, as ``scm.github`` uses everywhere) rather than trusting the
delivery alone:

- a check run: its ``output`` (title, summary, text), from ``GET …/check-runs/{id}``;
- a GitHub Actions job (a check run made by ``github-actions``, whose id is the job's, or the
  first failed job of a failed workflow run's attempt): the end of its log, from
  ``GET …/actions/jobs/{id}/logs`` (a redirect to a plain-text file).

The log is cut to its last :data:`LOG_LINES_MAX` lines and :data:`LOG_BYTES_MAX` bytes, with
terminal escapes and other control characters removed. Whatever GitHub cannot give (no App
configured, a permission missing, a log expired) becomes a one-line note instead, and the
delivery's own output is used; nothing here raises for GitHub's sake.

:func:`render` makes the lines of the report. They are the check's and the log's text, so the
caller puts them inside the untrusted block (``automations.untrusted``), never beside it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openinspect.automations.github import TEXT_MAX, TITLE_MAX, FailedCheck
from openinspect.errors import ScmError
from openinspect.scm.base import RepoRef

if TYPE_CHECKING:  # githubkit is heavy: loaded with the client (people.service), not here
    from openinspect.scm.github import GitHub

log = logging.getLogger(__name__)
LOG_LINES_MAX = 200
LOG_BYTES_MAX = 8_192
FAILED_JOBS = frozenset({"failure", "timed_out", "action_required", "startup_failure"})
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class CheckReport:
    name: str
    conclusion: str
    url: str | None
    title: str | None = None
    summary: str | None = None
    text: str | None = None
    job: str | None = None
    """The job whose log ``log`` ends."""
    log: str | None = None
    note: str | None = None
    """Why there is no log, when there is none."""


def tail(text: str, lines: int = LOG_LINES_MAX, max_bytes: int = LOG_BYTES_MAX) -> str:
    """The last ``lines`` lines of ``text`` within ``max_bytes`` bytes of UTF-8 (whole lines
    only, unless one line alone is longer), without terminal escapes or control characters."""
    text = _CONTROLS.sub("", _ESCAPES.sub("", text.replace("\r\n", "\n").replace("\r", "\n")))
    kept = text.rstrip("\n").split("\n")[-lines:]
    out: list[str] = []
    size = 0
    for line in reversed(kept):
        cost = len(line.encode()) + 1
        if size + cost > max_bytes:
            if not out:  # one huge line: its end
                out.append(line.encode()[-max_bytes:].decode("utf-8", "ignore"))
            break
        out.append(line)
        size += cost
    return "\n".join(reversed(out))


def _cut(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None


async def report(github: GitHub | None, repo: RepoRef | None, check: FailedCheck) -> CheckReport:
    """See the module docstring."""
    output = check.output
    found = CheckReport(
        name=check.name,
        conclusion=check.conclusion,
        url=check.url,
        title=output.title if output else None,
        summary=output.summary if output else None,
        text=output.text if output else None,
    )
    if github is None or repo is None:
        return _noted(found, "GitHub is not configured on this server, so no log was fetched")
    job_id, job_name = check.job_id, check.name
    try:
        if check.check_run_id is not None:
            run = await github.get_check_run(repo, check.check_run_id)
            found = CheckReport(
                name=run.name[:TITLE_MAX] or check.name,
                conclusion=check.conclusion,
                url=run.url or check.url,
                title=_cut(run.title, TITLE_MAX) or found.title,
                summary=_cut(run.summary, TEXT_MAX) or found.summary,
                text=_cut(run.text, TEXT_MAX) or found.text,
            )
            if run.app == "github-actions":
                job_id = run.id
        elif check.workflow_run_id is not None:
            jobs = await github.workflow_jobs(repo, check.workflow_run_id, check.attempt or 1)
            failed = [j for j in jobs if j.conclusion in FAILED_JOBS]
            if not failed:
                return _noted(found, "GitHub lists no failed job for this workflow run")
            job_id, job_name = failed[0].id, failed[0].name[:TITLE_MAX]
        if job_id is None:
            return _noted(found, "the check was not run by GitHub Actions, so it has no job log")
        text = await github.job_log_tail(repo, job_id, LOG_BYTES_MAX * 2)
    except ScmError as exc:
        log.info("no log for %s on %s: %s", check.name, repo.slug, exc.message)
        return _noted(found, f"GitHub did not give the log: {exc.message[:300]}")
    return CheckReport(**{**found.__dict__, "job": job_name, "log": tail(text)})


def _noted(found: CheckReport, note: str) -> CheckReport:
    return CheckReport(**{**found.__dict__, "note": note})


def render(found: CheckReport) -> str:
    """The report as lines for the agent (inside the untrusted block)."""
    lines = [f"Check: {found.name}", f"Conclusion: {found.conclusion}"]
    if found.url:
        lines.append(f"Link: {found.url}")
    if found.title:
        lines.append(f"Output title: {found.title}")
    for label, value in (("Output summary", found.summary), ("Output text", found.text)):
        if value:
            lines += [f"{label}:", value.rstrip()]
    if found.log is not None:
        count = found.log.count("\n") + 1 if found.log else 0
        lines += [
            f"Log of job {found.job!r}, its last {count} lines "
            f"(at most {LOG_LINES_MAX} lines / {LOG_BYTES_MAX // 1024} KB):",
            found.log,
        ]
    elif found.note:
        lines.append(f"No log: {found.note}")
    return "\n".join(lines)
