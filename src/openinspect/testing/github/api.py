"""The REST API subset under ``/api/v3`` (GitHub Enterprise Server's layout), in GitHub's JSON
shapes with its statuses and error bodies. Handlers are plain functions run in a worker thread
(they take the state lock and may run git); events they cause are delivered in the background.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openinspect.testing.doors import TooLarge, read_body
from openinspect.testing.github import checks, diffs, gitops, pulls
from openinspect.testing.github.auth import api_identity
from openinspect.testing.github.core import Core
from openinspect.testing.github.records import LEVELS, Level, RepoRec
from openinspect.testing.github.shapes import Json, iso
from openinspect.testing.github.state import ApiError, Identity, not_found

PREFIX = "/api/v3"
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
RATE_LIMIT = 5000
DIFF_MEDIA_RE = re.compile(r"application/vnd\.github(\.v3)?\.diff")


@dataclass(frozen=True)
class Ctx:
    core: Core
    identity: Identity
    params: dict[str, Any]
    query: QueryParams
    url: URL
    body: Any
    accept: str = ""

    def repo(self, level: Level = "pull") -> RepoRec:
        """The path's repository, if the caller may see it (404 otherwise, like GitHub)."""
        repo = self.core.state.repo(self.params["owner"], self.params["repo"])
        if repo is None:
            raise not_found()
        have = self.core.state.level(self.identity, repo)
        if LEVELS[have] < LEVELS["pull"]:
            raise not_found()
        if LEVELS[have] < LEVELS[level]:
            raise ApiError(403, "Resource not accessible by integration")
        return repo

    def user(self) -> str:
        if self.identity.kind == "anonymous":
            raise ApiError(401, "Requires authentication")
        if self.identity.kind != "user" or self.identity.login is None:
            raise ApiError(403, "Resource not accessible by integration")
        return self.identity.login

    def app(self) -> None:
        if self.identity.kind != "app":
            raise ApiError(401, "A JSON web token could not be decoded")

    def json_body(self) -> dict[str, Any]:
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise ApiError(400, "Problems parsing JSON")
        return self.body

    def sender(self) -> Json:
        login = self.identity.login or "ghost"
        return self.core.views.login(login, self.identity.kind == "installation")


Handler = Callable[[Ctx], Response]


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def paged(ctx: Ctx, items: list[Any], wrap: Callable[[list[Any]], Any] | None = None) -> Response:
    """One page of ``items`` with GitHub's ``Link`` header (next/last/prev/first)."""
    try:
        per_page = min(MAX_PER_PAGE, max(1, int(ctx.query.get("per_page", DEFAULT_PER_PAGE))))
        page = max(1, int(ctx.query.get("page", 1)))
    except ValueError as exc:
        raise ApiError(400, "Invalid page or per_page") from exc
    last = max(1, math.ceil(len(items) / per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    links = []
    if page < last:
        links += [(page + 1, "next"), (last, "last")]
    if page > 1:
        links += [(page - 1, "prev"), (1, "first")]
    headers = {}
    if links:
        headers["Link"] = ", ".join(
            f'<{ctx.url.include_query_params(page=n, per_page=per_page)}>; rel="{rel}"'
            for n, rel in links
        )
    return JSONResponse(wrap(chunk) if wrap else chunk, headers=headers)


# ---------------------------------------------------------------------- users


def get_user(ctx: Ctx) -> Response:
    user = ctx.core.state.user(ctx.user())
    assert user is not None
    return ok(ctx.core.site.private_user(user))


def get_emails(ctx: Ctx) -> Response:
    user = ctx.core.state.user(ctx.user())
    assert user is not None
    return paged(
        ctx,
        [
            {
                "email": e.email,
                "verified": e.verified,
                "primary": e.primary,
                "visibility": "private" if e.primary else None,
            }
            for e in user.emails
        ],
    )


def get_orgs(ctx: Ctx) -> Response:
    user = ctx.core.state.user(ctx.user())
    assert user is not None
    orgs = [ctx.core.state.user(o) for o in user.orgs]
    return paged(ctx, [ctx.core.site.org(o.login, o.id) for o in orgs if o is not None])


# ---------------------------------------------------------------------- the App


def _installation_json(ctx: Ctx, inst_id: int) -> Json:
    state = ctx.core.state
    inst = state.data.installations[inst_id]
    account = ctx.core.views.login(inst.account)
    return ctx.core.site.installation(inst, state.app, account)


def get_app(ctx: Ctx) -> Response:
    ctx.app()
    app = ctx.core.state.app
    owner = ctx.core.site.simple_user(app.slug, app.id, "Organization")
    return ok(
        {
            "id": app.id,
            "slug": app.slug,
            "node_id": f"A_{app.id}",
            "client_id": app.client_id,
            "owner": owner,
            "name": app.name,
            "description": "",
            "external_url": ctx.core.site.web,
            "html_url": f"{ctx.core.site.web}/apps/{app.slug}",
            "created_at": iso(0),
            "updated_at": iso(0),
            "permissions": {"contents": "write", "pull_requests": "write", "metadata": "read"},
            "events": ["pull_request", "push"],
        }
    )


def list_installations(ctx: Ctx) -> Response:
    ctx.app()
    with ctx.core.state.lock:
        ids = sorted(ctx.core.state.data.installations)
        return paged(ctx, [_installation_json(ctx, i) for i in ids])


def repo_installation(ctx: Ctx) -> Response:
    ctx.app()
    repo = ctx.core.state.repo(ctx.params["owner"], ctx.params["repo"])
    inst = ctx.core.state.installation_of(repo) if repo else None
    if inst is None:
        raise not_found()
    return ok(_installation_json(ctx, inst.id))


def create_token(ctx: Ctx) -> Response:
    ctx.app()
    body = ctx.json_body()
    names = body.get("repositories")
    if names is not None and not isinstance(names, list):
        raise ApiError(422, "Invalid request.\n\nFor 'properties/repositories', is not an array.")
    if body.get("repository_ids"):
        ids = set(body["repository_ids"])
        names = [*(names or []), *(r.full_name for r in _all_repos(ctx) if r.id in ids)]
    rec = ctx.core.state.mint_installation_token(
        int(ctx.params["installation_id"]), names, body.get("permissions")
    )
    repos = [ctx.core.state.require_repo(r) for r in rec.repos]
    return ok(
        {
            "token": rec.token,
            "expires_at": iso(rec.expires_at),
            "permissions": rec.permissions,
            "repository_selection": "selected",
            "repositories": [ctx.core.views.repo(r) for r in repos],
        },
        201,
    )


def _all_repos(ctx: Ctx) -> list[RepoRec]:
    with ctx.core.state.lock:
        return list(ctx.core.state.data.repos.values())


def installation_repos(ctx: Ctx) -> Response:
    if ctx.identity.kind != "installation":
        raise ApiError(403, "This endpoint can only be accessed with an installation token")
    repos = [ctx.core.state.require_repo(r) for r in sorted(ctx.identity.repos)]
    items = [ctx.core.views.repo(r, ctx.identity) for r in repos]
    return paged(
        ctx,
        items,
        lambda chunk: {
            "total_count": len(items),
            "repository_selection": "selected",
            "repositories": chunk,
        },
    )


# ---------------------------------------------------------------------- repos and branches


def get_repo(ctx: Ctx) -> Response:
    return ok(ctx.core.views.full_repo(ctx.repo(), ctx.identity))


def get_branch(ctx: Ctx) -> Response:
    repo = ctx.repo()
    name = ctx.params["branch"]
    path = ctx.core.state.bare_path(repo)
    sha = gitops.branch_sha(path, name)
    if sha is None:
        raise ApiError(404, "Branch not found")
    return ok(ctx.core.site.branch(repo, name, gitops.commit_info(path, sha), sha))


# ---------------------------------------------------------------------- pull requests


def list_pulls(ctx: Ctx) -> Response:
    repo = ctx.repo()
    state_filter = ctx.query.get("state", "open")
    head = ctx.query.get("head")
    base = ctx.query.get("base")
    found = []
    with ctx.core.state.lock:
        for pull in sorted(repo.pulls.values(), key=lambda p: p.number, reverse=True):
            if state_filter != "all" and pull.state != state_filter:
                continue
            if head:
                owner, _, branch = head.rpartition(":")
                head_owner = pull.head_owner or repo.owner
                if (owner or repo.owner).lower() != head_owner.lower() or branch != pull.head:
                    continue
            if base and pull.base != base:
                continue
            found.append(pull)
    if ctx.query.get("direction") == "asc":
        found.reverse()
    return paged(ctx, [ctx.core.views.pull(repo, p) for p in found])


def create_pull(ctx: Ctx) -> Response:
    repo = ctx.repo()
    pull = pulls.create(ctx.core.state, ctx.identity, repo, ctx.json_body())
    views = ctx.core.views
    ctx.core.emit(
        "pull_request", views.pull_request_event("opened", repo, pull, ctx.sender()), sync=False
    )
    return ok(views.pull(repo, pull), 201)


def get_pull(ctx: Ctx) -> Response:
    """The PR, or its unified diff with ``Accept: application/vnd.github.diff``."""
    repo = ctx.repo()
    pull = pulls.get(repo, int(ctx.params["number"]))
    pulls.refresh_head(ctx.core.state, repo, pull)
    if DIFF_MEDIA_RE.search(ctx.accept):
        path = ctx.core.state.bare_path(repo)
        text = diffs.unified(path, pull.base_sha, pull.head_sha)
        return Response(text, media_type="text/plain; charset=utf-8")
    return ok(ctx.core.views.pull(repo, pull))


def update_pull(ctx: Ctx) -> Response:
    repo = ctx.repo()
    was_open = pulls.get(repo, int(ctx.params["number"])).state == "open"
    pull, changes = pulls.update(
        ctx.core.state, ctx.identity, repo, int(ctx.params["number"]), ctx.json_body()
    )
    views = ctx.core.views
    if changes:
        event = views.pull_request_event("edited", repo, pull, ctx.sender(), changes)
        ctx.core.emit("pull_request", event, sync=False)
    if was_open != (pull.state == "open"):
        action = "reopened" if pull.state == "open" else "closed"
        ctx.core.emit(
            "pull_request", views.pull_request_event(action, repo, pull, ctx.sender()), sync=False
        )
    return ok(views.pull(repo, pull))


def merge_pull(ctx: Ctx) -> Response:
    repo = ctx.repo("push")
    merger = ctx.identity.login or "ghost"
    pull = pulls.merge(ctx.core.state, repo, int(ctx.params["number"]), merger)
    views = ctx.core.views
    ctx.core.emit(
        "pull_request", views.pull_request_event("closed", repo, pull, ctx.sender()), sync=False
    )
    return ok(
        {
            "sha": pull.merge_commit_sha,
            "merged": True,
            "message": "Pull Request successfully merged",
        }
    )


# ---------------------------------------------------------------------- checks and Actions


def get_check_run(ctx: Ctx) -> Response:
    repo = ctx.repo()
    checks.may_read(ctx.identity, "checks")
    job = checks.find_job(repo, int(ctx.params["check_run_id"]))
    return ok(checks.check_run(ctx.core.site, repo, ctx.core.views.repo(repo), job))


def _run_of(repo: RepoRec, run_id: int) -> Any:
    run = repo.workflow_runs.get(run_id)
    if run is None:
        raise not_found()
    return run


def get_job(ctx: Ctx) -> Response:
    repo = ctx.repo()
    checks.may_read(ctx.identity, "actions")
    job = checks.find_job(repo, int(ctx.params["job_id"]))
    return ok(checks.job(ctx.core.site, repo, _run_of(repo, job.run_id), job))


def list_attempt_jobs(ctx: Ctx) -> Response:
    repo = ctx.repo()
    checks.may_read(ctx.identity, "actions")
    run = _run_of(repo, int(ctx.params["run_id"]))
    attempt = int(ctx.params["attempt"])
    jobs = [repo.jobs[i] for i in run.job_ids if repo.jobs[i].run_attempt == attempt]
    items = [checks.job(ctx.core.site, repo, run, j) for j in jobs]
    return paged(ctx, items, lambda chunk: {"total_count": len(items), "jobs": chunk})


def job_logs(ctx: Ctx) -> Response:
    repo = ctx.repo()
    checks.may_read(ctx.identity, "actions")
    return checks.redirect_to_log(ctx.core.site, checks.find_job(repo, int(ctx.params["job_id"])))


# ---------------------------------------------------------------------- plumbing


def _rate_headers() -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(RATE_LIMIT),
        "X-RateLimit-Remaining": str(RATE_LIMIT - 1),
        "X-RateLimit-Reset": str(int(time.time()) + 3600),
        "X-RateLimit-Used": "1",
        "X-RateLimit-Resource": "core",
        "X-GitHub-Media-Type": "github.v3; format=json",
        "X-GitHub-Request-Id": uuid.uuid4().hex[:16].upper(),
    }


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=_rate_headers() | exc.headers)


def endpoint(core: Core, handler: Handler) -> Callable[[Request], Any]:
    async def run(request: Request) -> Response:
        try:
            raw = await read_body(request)
        except TooLarge:
            return error_response(ApiError(413, "Request body too large"))
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            return error_response(ApiError(400, "Problems parsing JSON"))
        try:
            identity = api_identity(core.state, request.headers.get("authorization"))
            ctx = Ctx(
                core=core,
                identity=identity,
                params=dict(request.path_params),
                query=request.query_params,
                url=request.url,
                body=body,
                accept=request.headers.get("accept", ""),
            )
            response = await run_in_threadpool(handler, ctx)
        except ApiError as exc:
            return error_response(exc)
        response.headers.update(_rate_headers())
        return response

    return run


def not_found_route(request: Request) -> Response:
    return error_response(not_found())


def routes(core: Core, extra: Sequence[tuple[str, Handler, list[str]]] = ()) -> list[BaseRoute]:
    """The API's routes; ``extra`` adds (path, handler, methods) rows from other modules."""
    table: list[tuple[str, Handler, list[str]]] = [
        ("/user", get_user, ["GET"]),
        ("/user/emails", get_emails, ["GET"]),
        ("/user/orgs", get_orgs, ["GET"]),
        ("/app", get_app, ["GET"]),
        ("/app/installations", list_installations, ["GET"]),
        ("/app/installations/{installation_id:int}/access_tokens", create_token, ["POST"]),
        ("/installation/repositories", installation_repos, ["GET"]),
        ("/repos/{owner}/{repo}", get_repo, ["GET"]),
        ("/repos/{owner}/{repo}/installation", repo_installation, ["GET"]),
        ("/repos/{owner}/{repo}/branches/{branch:path}", get_branch, ["GET"]),
        ("/repos/{owner}/{repo}/pulls", list_pulls, ["GET"]),
        ("/repos/{owner}/{repo}/pulls", create_pull, ["POST"]),
        ("/repos/{owner}/{repo}/pulls/{number:int}", get_pull, ["GET"]),
        ("/repos/{owner}/{repo}/pulls/{number:int}", update_pull, ["PATCH"]),
        ("/repos/{owner}/{repo}/pulls/{number:int}/merge", merge_pull, ["PUT"]),
        ("/repos/{owner}/{repo}/check-runs/{check_run_id:int}", get_check_run, ["GET"]),
        ("/repos/{owner}/{repo}/actions/jobs/{job_id:int}", get_job, ["GET"]),
        ("/repos/{owner}/{repo}/actions/jobs/{job_id:int}/logs", job_logs, ["GET"]),
        (
            "/repos/{owner}/{repo}/actions/runs/{run_id:int}/attempts/{attempt:int}/jobs",
            list_attempt_jobs,
            ["GET"],
        ),
        *extra,
    ]
    out: list[BaseRoute] = [
        Route(PREFIX + path, endpoint(core, handler), methods=methods)
        for path, handler, methods in table
    ]
    out.append(Route(PREFIX + "/{rest:path}", not_found_route))
    return out
