"""Plain-HTTP control endpoints under ``/_fake`` for the standalone fake (``openinspect testing
github-server``): the same operations as ``FakeGitHub``'s Python methods, as JSON.

    GET  /_fake/state                     users, repos, installations, webhook URL, settings
    POST /_fake/users                     {"login", "name"?, "emails"?, "orgs"?}
    POST /_fake/repos                     {"full_name", "source"?, "private"?, "default_branch"?,
                                           "collaborators"?: {"login": "pull|push|admin"}}
    POST /_fake/installations             {"repos": ["owner/name"]}      → {"id"}
    POST /_fake/webhooks                  {"url", "secret"?}
    GET  /_fake/deliveries                POST /_fake/deliveries/{id}/redeliver
    GET  /_fake/requests
    POST /_fake/pulls/{owner}/{repo}/{n}/merge | /close
    POST /_fake/pulls/{owner}/{repo}/{n}/fail-check  {"name"?, "log"?, "conclusion"?,
                                          "title"?, "summary"?, "events"?} → {"deliveries"}
    POST /_fake/oauth-user                {"login": "alice" | null, "deny"?: false}
    POST /_fake/devices/{user_code}/approve   {"login"}
    POST /_fake/user-tokens               {"login"}                        → {"token"}
    POST /_fake/settings                  {"installation_token_ttl_s"?, "user_token_ttl_s"?,
                                           "device_interval_s"?}

People acting on pull requests (see ``people``); each answers ``{"record", "deliveries"}``
once the webhooks it causes were delivered (each delivery with the receiver's status).
``by`` is a login, or the App's bot ``<slug>[bot]`` to act as the App:

    POST /_fake/repos/{owner}/{repo}/forks {"user"}                    → the fork (repo record)
    POST /_fake/pulls/{owner}/{repo}      {"head": "branch" | "user:branch", "by", "base"?,
                                           "title"?, "body"?, "draft"?}     opened
    POST /_fake/pulls/{owner}/{repo}/{n}/ready            {"by"?}        ready_for_review
    POST /_fake/pulls/{owner}/{repo}/{n}/request-review   {"reviewer"?, "by"?}
                                          (default reviewer: the App's bot) review_requested
    POST /_fake/pulls/{owner}/{repo}/{n}/comments         {"body", "by"}  issue_comment
    POST /_fake/pulls/{owner}/{repo}/{n}/review-comments  {"body", "by", "path", "line",
                                           "side"?, "start_line"?} or {"body", "by",
                                           "in_reply_to"}   pull_request_review_comment
    POST /_fake/pulls/{owner}/{repo}/{n}/reviews          {"event", "by", "body"?,
                                           "comments"?: [{"path", "line", "body", …}]}
                                          pull_request_review_comment…, pull_request_review
    GET  /_fake/pulls/{owner}/{repo}/{n}  the PR record: reviews, comments, review comments
    GET  /_fake/repos/{owner}/{repo}/reactions                       every reaction in the repo

A refusal GitHub would make (a comment outside the diff…) answers with GitHub's status and
error body.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openinspect.testing.doors import TooLarge, read_body
from openinspect.testing.github import gitops
from openinspect.testing.github.state import ApiError

if TYPE_CHECKING:
    from openinspect.testing.github.people import Acted
    from openinspect.testing.github.server import FakeGitHub

Op = Callable[[dict[str, Any], dict[str, Any]], Any]


def routes(fake: FakeGitHub) -> list[BaseRoute]:
    def wrap(op: Op) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                raw = await read_body(request)
            except TooLarge:
                return JSONResponse({"error": "the body is too large"}, status_code=413)
            try:
                body = json.loads(raw) if raw.strip() else {}
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                result = await run_in_threadpool(op, dict(request.path_params), body)
            except (ValueError, KeyError, TypeError, gitops.GitOpError) as exc:
                return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=400)
            except ApiError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)
            return JSONResponse(result)

        return run

    def state(_: dict[str, Any], __: dict[str, Any]) -> Any:
        data = fake.state.data
        with fake.state.lock:
            return {
                "web_url": fake.url,
                "app": {"id": data.app.id, "slug": data.app.slug, "client_id": data.app.client_id},
                "users": [u.model_dump(mode="json") for u in data.users.values()],
                "repos": [
                    r.model_dump(mode="json", exclude={"pulls", "jobs", "workflow_runs"})
                    | {"pulls": sorted(r.pulls), "branches": fake.branches(r.full_name)}
                    for r in data.repos.values()
                ],
                "installations": [i.model_dump(mode="json") for i in data.installations.values()],
                "webhook_url": data.hook.url if data.hook else None,
                "settings": data.settings.model_dump(mode="json"),
            }

    def add_user(_: dict[str, Any], body: dict[str, Any]) -> Any:
        user = fake.add_user(
            body["login"],
            name=body.get("name"),
            emails=body.get("emails"),
            orgs=body.get("orgs", ()),
        )
        return user.model_dump(mode="json")

    def add_repo(_: dict[str, Any], body: dict[str, Any]) -> Any:
        repo = fake.create_repo(
            body["full_name"],
            source=body.get("source"),
            private=body.get("private", True),
            default_branch=body.get("default_branch", "main"),
            collaborators=body.get("collaborators"),
        )
        return repo.model_dump(mode="json", exclude={"pulls", "jobs", "workflow_runs"})

    def add_installation(_: dict[str, Any], body: dict[str, Any]) -> Any:
        return {"id": fake.add_installation(body["repos"])}

    def webhooks(_: dict[str, Any], body: dict[str, Any]) -> Any:
        fake.subscribe_webhooks(body["url"], body.get("secret"))
        return {"ok": True}

    def deliveries(_: dict[str, Any], __: dict[str, Any]) -> Any:
        return [d.model_dump(mode="json") for d in fake.deliveries]

    def redeliver(params: dict[str, Any], _: dict[str, Any]) -> Any:
        return fake.redeliver(params["delivery_id"]).model_dump(mode="json")

    def requests(_: dict[str, Any], __: dict[str, Any]) -> Any:
        return [r.model_dump(mode="json") for r in fake.requests]

    def pull_action(params: dict[str, Any], body: dict[str, Any]) -> Any:
        repo, number = f"{params['owner']}/{params['repo']}", int(params["number"])
        if params["action"] not in ("merge", "close"):
            raise ValueError(f"expected merge or close, got {params['action']!r}")
        act = fake.merge_pull if params["action"] == "merge" else fake.close_pull
        delivery = act(repo, number, by=body.get("by"))
        return {
            "pull": fake.pull(repo, number).model_dump(mode="json"),
            "delivery": delivery.model_dump(mode="json") if delivery else None,
        }

    def fail_check(params: dict[str, Any], body: dict[str, Any]) -> Any:
        repo, number = f"{params['owner']}/{params['repo']}", int(params["number"])
        options: dict[str, Any] = {
            k: body[k] for k in ("name", "log", "conclusion", "title", "summary") if k in body
        }
        if "events" in body:
            options["events"] = list(body["events"])
        sent = fake.fail_check(repo, number, **options)
        return {"deliveries": [d.model_dump(mode="json") for d in sent]}

    def oauth_user(_: dict[str, Any], body: dict[str, Any]) -> Any:
        fake.set_oauth_user(body.get("login"), deny=bool(body.get("deny", False)))
        return {"ok": True}

    def approve(params: dict[str, Any], body: dict[str, Any]) -> Any:
        fake.approve_device(params["user_code"], body["login"])
        return {"ok": True}

    def user_token(_: dict[str, Any], body: dict[str, Any]) -> Any:
        return {"token": fake.user_token(body["login"])}

    def settings(_: dict[str, Any], body: dict[str, Any]) -> Any:
        if "installation_token_ttl_s" in body:
            fake.set_installation_token_ttl(float(body["installation_token_ttl_s"]))
        if "user_token_ttl_s" in body:
            ttl = body["user_token_ttl_s"]
            fake.set_user_token_ttl(None if ttl is None else float(ttl))
        if "device_interval_s" in body:
            fake.set_device_flow(interval_s=float(body["device_interval_s"]))
        return fake.state.data.settings.model_dump(mode="json")

    def acted(result: Acted[Any]) -> Any:
        return {
            "record": result.record.model_dump(mode="json"),
            "deliveries": [d.model_dump(mode="json") for d in result.deliveries],
        }

    def repo_of(params: dict[str, Any]) -> str:
        return f"{params['owner']}/{params['repo']}"

    def fork(params: dict[str, Any], body: dict[str, Any]) -> Any:
        made = fake.fork(repo_of(params), body["user"])
        return made.model_dump(mode="json", exclude={"pulls", "jobs", "workflow_runs"})

    def open_pull(params: dict[str, Any], body: dict[str, Any]) -> Any:
        options = {k: body[k] for k in ("base", "title", "body", "draft") if k in body}
        return acted(fake.open_pull(repo_of(params), body["head"], by=body["by"], **options))

    def ready(params: dict[str, Any], body: dict[str, Any]) -> Any:
        return acted(fake.ready_for_review(repo_of(params), params["number"], by=body.get("by")))

    def request_review(params: dict[str, Any], body: dict[str, Any]) -> Any:
        number = params["number"]
        made = fake.request_review(repo_of(params), number, body.get("reviewer"), by=body.get("by"))
        return acted(made)

    def comment(params: dict[str, Any], body: dict[str, Any]) -> Any:
        return acted(fake.comment(repo_of(params), params["number"], body["body"], by=body["by"]))

    def review_comment(params: dict[str, Any], body: dict[str, Any]) -> Any:
        keys = ("path", "line", "side", "start_line", "in_reply_to")
        options = {k: body[k] for k in keys if k in body}
        made = fake.review_comment(
            repo_of(params), params["number"], body["body"], by=body["by"], **options
        )
        return acted(made)

    def review(params: dict[str, Any], body: dict[str, Any]) -> Any:
        comments = body.get("comments", [])
        if not isinstance(comments, list):
            raise ValueError("comments must be a list")
        made = fake.submit_review(
            repo_of(params),
            params["number"],
            body["event"],
            by=body["by"],
            body=body.get("body", ""),
            comments=comments,
        )
        return acted(made)

    def show_pull(params: dict[str, Any], _: dict[str, Any]) -> Any:
        return fake.pull(repo_of(params), params["number"]).model_dump(mode="json")

    def reactions(params: dict[str, Any], _: dict[str, Any]) -> Any:
        return [r.model_dump(mode="json") for r in fake.reactions(repo_of(params))]

    pull = "/_fake/pulls/{owner}/{repo}/{number:int}"
    table: list[tuple[str, Op, str]] = [
        ("/_fake/repos/{owner}/{repo}/forks", fork, "POST"),
        ("/_fake/repos/{owner}/{repo}/reactions", reactions, "GET"),
        ("/_fake/pulls/{owner}/{repo}", open_pull, "POST"),
        (pull, show_pull, "GET"),
        (pull + "/ready", ready, "POST"),
        (pull + "/request-review", request_review, "POST"),
        (pull + "/comments", comment, "POST"),
        (pull + "/review-comments", review_comment, "POST"),
        (pull + "/reviews", review, "POST"),
        ("/_fake/state", state, "GET"),
        ("/_fake/users", add_user, "POST"),
        ("/_fake/repos", add_repo, "POST"),
        ("/_fake/installations", add_installation, "POST"),
        ("/_fake/webhooks", webhooks, "POST"),
        ("/_fake/deliveries", deliveries, "GET"),
        ("/_fake/deliveries/{delivery_id}/redeliver", redeliver, "POST"),
        ("/_fake/requests", requests, "GET"),
        ("/_fake/pulls/{owner}/{repo}/{number:int}/fail-check", fail_check, "POST"),
        ("/_fake/pulls/{owner}/{repo}/{number:int}/{action:str}", pull_action, "POST"),
        ("/_fake/oauth-user", oauth_user, "POST"),
        ("/_fake/devices/{user_code}/approve", approve, "POST"),
        ("/_fake/user-tokens", user_token, "POST"),
        ("/_fake/settings", settings, "POST"),
    ]
    return [Route(path, wrap(op), methods=[method]) for path, op, method in table]
