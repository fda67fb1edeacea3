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
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openinspect.testing.github import gitops
from openinspect.testing.github.state import ApiError

if TYPE_CHECKING:
    from openinspect.testing.github.server import FakeGitHub

Op = Callable[[dict[str, Any], dict[str, Any]], Any]


def routes(fake: FakeGitHub) -> list[BaseRoute]:
    def wrap(op: Op) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            raw = await request.body()
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

    table: list[tuple[str, Op, str]] = [
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
