"""Failing CI in the fake: GitHub Actions workflow runs with one job each, whose check run has
the job's id (as on GitHub), their REST endpoints, their logs and their webhooks.

``fail(state, repo, pull, …)`` records a failed workflow run on the pull request's head commit;
``FakeGitHub.fail_check`` then delivers ``check_run`` ``completed`` and ``workflow_run``
``completed``. The endpoints (read with ``checks: read`` / ``actions: read``):

    GET /repos/{o}/{r}/check-runs/{id}
    GET /repos/{o}/{r}/actions/jobs/{job_id}
    GET /repos/{o}/{r}/actions/runs/{run_id}/attempts/{n}/jobs
    GET /repos/{o}/{r}/actions/jobs/{job_id}/logs    → 302 to the plain-text log, which honours
                                                       ``Range: bytes=-N`` (206, the last N bytes)
"""

from __future__ import annotations

import re
import secrets
import time

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from openinspect.testing.github import pulls
from openinspect.testing.github.records import JobRec, PullRec, RepoRec, WorkflowRunRec
from openinspect.testing.github.shapes import Json, Site, iso, node_id
from openinspect.testing.github.state import ApiError, FakeState, Identity, not_found

ACTIONS_APP_ID = 15368
ACTIONS_SLUG = "github-actions"
LOG_PATH = "/_blobs/job-logs/{job_id:int}/{token}"
_SUFFIX_RANGE = re.compile(r"^bytes=-(\d+)$")


def fail(
    state: FakeState,
    repo: RepoRec,
    pull: PullRec,
    *,
    name: str,
    log: str,
    conclusion: str,
    workflow: str,
    actor: str,
    title: str | None,
    summary: str | None,
    text: str | None,
) -> tuple[WorkflowRunRec, JobRec]:
    """A failed workflow run (and its one job) on ``pull``'s current head."""
    pulls.refresh_head(state, repo, pull)
    with state.change():
        now = time.time()
        run = WorkflowRunRec(
            id=state.next_id(),
            name=workflow,
            head_branch=pull.head,
            head_sha=pull.head_sha,
            run_number=len(repo.workflow_runs) + 1,
            conclusion=conclusion,
            actor=actor,
            pulls=[pull.number],
            created_at=now,
        )
        job = JobRec(
            id=state.next_id(),
            run_id=run.id,
            name=name,
            head_sha=pull.head_sha,
            head_branch=pull.head,
            conclusion=conclusion,
            log=log,
            log_token=secrets.token_urlsafe(16),
            title=title,
            summary=summary,
            text=text,
            pulls=[pull.number],
            created_at=now,
        )
        run.job_ids.append(job.id)
        repo.workflow_runs[run.id] = run
        repo.jobs[job.id] = job
        return run, job


def may_read(identity: Identity, permission: str) -> None:
    if identity.kind == "installation" and not identity.may(permission, "read"):
        raise ApiError(403, "Resource not accessible by integration")


def _pull_stub(site: Site, repo: RepoRec, repo_json: Json, number: int) -> Json:
    pull = repo.pulls.get(number)

    def side(ref: str, sha: str) -> Json:
        return {
            "ref": ref,
            "sha": sha,
            "repo": {"id": repo.id, "url": repo_json["url"], "name": repo.name},
        }

    return {
        "url": f"{site.api}/repos/{repo.full_name}/pulls/{number}",
        "id": pull.id if pull else number,
        "number": number,
        "head": side(pull.head, pull.head_sha) if pull else side("", ""),
        "base": side(pull.base, pull.base_sha) if pull else side("", ""),
    }


def actions_app(site: Site, owner: Json) -> Json:
    return {
        "id": ACTIONS_APP_ID,
        "slug": ACTIONS_SLUG,
        "node_id": node_id("A", ACTIONS_APP_ID),
        "client_id": "Iv1.github-actions",
        "owner": owner,
        "name": "GitHub Actions",
        "description": "Automate your workflow from idea to production",
        "external_url": "https://help.github.com/en/actions",
        "html_url": f"{site.web}/apps/github-actions",
        "created_at": iso(0),
        "updated_at": iso(0),
        "permissions": {"checks": "write", "actions": "write", "metadata": "read"},
        "events": [],
    }


def check_run(site: Site, repo: RepoRec, repo_json: Json, job: JobRec) -> Json:
    """A job's check run, in the REST shape (the ``check_run`` of its webhook too)."""
    full = repo.full_name
    url = f"{site.api}/repos/{full}/check-runs/{job.id}"
    html = f"{site.web}/{full}/actions/runs/{job.run_id}/job/{job.id}"
    return {
        "id": job.id,
        "head_sha": job.head_sha,
        "node_id": node_id("CR", job.id),
        "external_id": str(job.id),
        "url": url,
        "html_url": html,
        "details_url": html,
        "status": "completed",
        "conclusion": job.conclusion,
        "started_at": iso(job.created_at),
        "completed_at": iso(job.created_at),
        "output": {
            "title": job.title,
            "summary": job.summary,
            "text": job.text,
            "annotations_count": 0,
            "annotations_url": f"{url}/annotations",
        },
        "name": job.name,
        "check_suite": {"id": job.run_id, "head_branch": job.head_branch, "head_sha": job.head_sha},
        "app": actions_app(site, repo_json["owner"]),
        "pull_requests": [_pull_stub(site, repo, repo_json, n) for n in job.pulls],
    }


def job(site: Site, repo: RepoRec, run: WorkflowRunRec, rec: JobRec) -> Json:
    full = repo.full_name
    return {
        "id": rec.id,
        "run_id": rec.run_id,
        "run_url": f"{site.api}/repos/{full}/actions/runs/{rec.run_id}",
        "run_attempt": rec.run_attempt,
        "node_id": node_id("CR", rec.id),
        "head_sha": rec.head_sha,
        "url": f"{site.api}/repos/{full}/actions/jobs/{rec.id}",
        "html_url": f"{site.web}/{full}/actions/runs/{rec.run_id}/job/{rec.id}",
        "status": "completed",
        "conclusion": rec.conclusion,
        "created_at": iso(rec.created_at),
        "started_at": iso(rec.created_at),
        "completed_at": iso(rec.created_at),
        "name": rec.name,
        "steps": [
            {
                "status": "completed",
                "conclusion": rec.conclusion,
                "name": "Run tests",
                "number": 1,
                "started_at": iso(rec.created_at),
                "completed_at": iso(rec.created_at),
            }
        ],
        "check_run_url": f"{site.api}/repos/{full}/check-runs/{rec.id}",
        "labels": ["ubuntu-latest"],
        "runner_id": 1,
        "runner_name": "GitHub Actions 1",
        "runner_group_id": 1,
        "runner_group_name": "GitHub Actions",
        "workflow_name": run.name,
        "head_branch": rec.head_branch,
    }


def workflow_run(
    site: Site, repo: RepoRec, repo_json: Json, run: WorkflowRunRec, actor: Json
) -> Json:
    full = repo.full_name
    url = f"{site.api}/repos/{full}/actions/runs/{run.id}"
    return {
        "id": run.id,
        "name": run.name,
        "node_id": node_id("WFR", run.id),
        "check_suite_id": run.id,
        "check_suite_node_id": node_id("CS", run.id),
        "head_branch": run.head_branch,
        "head_sha": run.head_sha,
        "path": ".github/workflows/ci.yml",
        "display_title": run.name,
        "run_number": run.run_number,
        "run_attempt": run.run_attempt,
        "event": "pull_request",
        "status": "completed",
        "conclusion": run.conclusion,
        "workflow_id": 1,
        "url": url,
        "html_url": f"{site.web}/{full}/actions/runs/{run.id}",
        "jobs_url": f"{url}/jobs",
        "logs_url": f"{url}/logs",
        "check_suite_url": f"{site.api}/repos/{full}/check-suites/{run.id}",
        "artifacts_url": f"{url}/artifacts",
        "cancel_url": f"{url}/cancel",
        "rerun_url": f"{url}/rerun",
        "previous_attempt_url": None,
        "workflow_url": f"{site.api}/repos/{full}/actions/workflows/1",
        "pull_requests": [_pull_stub(site, repo, repo_json, n) for n in run.pulls],
        "created_at": iso(run.created_at),
        "updated_at": iso(run.created_at),
        "run_started_at": iso(run.created_at),
        "actor": actor,
        "triggering_actor": actor,
        "head_commit": {
            "id": run.head_sha,
            "tree_id": run.head_sha,
            "message": f"Head of {run.head_branch}",
            "timestamp": iso(run.created_at),
            "author": {"name": run.actor, "email": f"{run.actor}@users.noreply.github.com"},
            "committer": {"name": run.actor, "email": f"{run.actor}@users.noreply.github.com"},
        },
        "repository": repo_json,
        "head_repository": repo_json,
    }


def workflow(site: Site, repo: RepoRec, run: WorkflowRunRec) -> Json:
    full = repo.full_name
    return {
        "id": 1,
        "node_id": node_id("W", 1),
        "name": run.name,
        "path": ".github/workflows/ci.yml",
        "state": "active",
        "created_at": iso(0),
        "updated_at": iso(0),
        "url": f"{site.api}/repos/{full}/actions/workflows/1",
        "html_url": f"{site.web}/{full}/blob/main/.github/workflows/ci.yml",
        "badge_url": f"{site.web}/{full}/workflows/CI/badge.svg",
    }


def log_url(site: Site, rec: JobRec) -> str:
    return site.web + LOG_PATH.replace("{job_id:int}", str(rec.id)).replace(
        "{token}", rec.log_token
    )


def find_job(repo: RepoRec, job_id: int) -> JobRec:
    found = repo.jobs.get(job_id)
    if found is None:
        raise not_found()
    return found


def log_blob(state: FakeState, request: Request) -> Response:
    """The plain-text log behind a job's log redirect (no credentials: the URL is the key)."""
    job_id, token = int(request.path_params["job_id"]), request.path_params["token"]
    with state.lock:
        found = next((r.jobs[job_id] for r in state.data.repos.values() if job_id in r.jobs), None)
    if found is None or not secrets.compare_digest(found.log_token, token):
        return PlainTextResponse("The specified blob does not exist.", status_code=404)
    data = found.log.encode()
    wanted = _SUFFIX_RANGE.match(request.headers.get("range", ""))
    if wanted is None:
        return Response(data, media_type="text/plain; charset=utf-8")
    size = min(len(data), int(wanted[1]))
    start = len(data) - size
    return Response(
        data[start:],
        status_code=206,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"},
    )


def redirect_to_log(site: Site, rec: JobRec) -> Response:
    return RedirectResponse(log_url(site, rec), status_code=302)
