"""Control endpoints under ``/_fake`` so a person (or a test in another process) can drive the
fake with curl; each is a ``FakeLinear`` method. JSON in, JSON out; errors are
``{"ok": false, "error": …}`` naming the kind of thing, never the value sent.

- ``POST /_fake/token {actor?, user?, scopes?}`` → ``{access_token}``
- ``POST /_fake/users {name, email}``, ``/_fake/teams {key, name}``, ``/_fake/projects {name}``,
  ``/_fake/labels {name, team?}``, ``/_fake/issues {team, title, description?, project?,
  labels?, creator?}`` → the record
- ``GET /_fake/workspace`` → organizations, teams (with states), projects, labels, users, issues
- ``POST /_fake/webhook {url, secret?}``
- ``POST /_fake/mention {issue, user, body?}``, ``/_fake/delegate {issue, user}`` →
  ``{agent_session_id, delivery_id}``
- ``POST /_fake/prompt {session, user, body}``, ``/_fake/stop {session, user}`` →
  ``{delivery_id}``
- ``GET /_fake/sessions``, ``GET /_fake/sessions/{id}`` → sessions with activities, links, plan
  and derived status
- ``GET /_fake/deliveries[?wait_s=N]`` → every delivery with its attempts, after waiting up to N
  seconds (at most 30) for all to be answered or given up on
- ``POST /_fake/deliveries/{id}/replay`` → the same bytes again
- ``POST /_fake/authorize/refuse`` → the next authorize answers ``access_denied``
- ``POST /_fake/fail {field, status?, apply?, times?}`` → the next calls of a GraphQL field fail
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from openinspect.testing.doors import control_error, json_object, wait_asked
from openinspect.testing.doors import string_field as _field
from openinspect.testing.linear.records import AgentSession, Delivery

if TYPE_CHECKING:
    from openinspect.testing.linear.server import FakeLinear

UNKNOWN = "unknown organization, team, user, issue, session or delivery (add it first)"

Handler = Callable[[dict[str, Any]], Any]


def _strings(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"expected {name!r}: a list of strings")
    return value


def session_json(session: AgentSession) -> dict[str, Any]:
    out = dataclasses.asdict(session)
    out["status"] = session.status
    for activity, shown in zip(out["activities"], session.activities, strict=True):
        activity["type"] = shown.type
    return out


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "action": delivery.action,
        "agent_session_id": delivery.agent_session_id,
        "attempts": [dataclasses.asdict(a) for a in delivery.attempts],
        "done": delivery.done,
        "replay_of": delivery.replay_of,
    }


def _json_endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        data = await json_object(request)
        if isinstance(data, Response):
            return data
        data.update(request.path_params)
        try:
            answer = handler(data)
        except KeyError:
            return control_error(404, UNKNOWN)
        except ValueError as exc:
            return control_error(400, str(exc))
        if dataclasses.is_dataclass(answer) and not isinstance(answer, type):
            answer = dataclasses.asdict(answer)
        return JSONResponse({"ok": True, **(answer or {})})

    return endpoint


def routes(fake: FakeLinear) -> list[Route]:
    def token(data: dict[str, Any]) -> dict[str, Any]:
        actor = data.get("actor", "app")
        if actor not in ("app", "user"):
            raise ValueError("expected 'actor': app or user")
        scopes = _strings(data, "scopes") or None
        kwargs: dict[str, Any] = {
            "actor": actor,
            "user_id": _field(data, "user", required=False),
        }
        if scopes:
            kwargs["scopes"] = scopes
        return {"access_token": fake.token(**kwargs)}

    def issue(data: dict[str, Any]) -> Any:
        return fake.add_issue(
            str(_field(data, "team")),
            str(_field(data, "title")),
            description=_field(data, "description", required=False),
            project=_field(data, "project", required=False),
            labels=_strings(data, "labels"),
            creator=_field(data, "creator", required=False),
        )

    def webhook(data: dict[str, Any]) -> None:
        url = str(_field(data, "url"))
        if not url.startswith(("http://", "https://")):
            raise ValueError("expected 'url': an http(s) URL")
        fake.webhook(url, _field(data, "secret", required=False))

    def start(kind: str) -> Handler:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            issue_ref, user = str(_field(data, "issue")), str(_field(data, "user"))
            if kind == "mention":
                sid = fake.mention(issue_ref, user, _field(data, "body", required=False))
            else:
                sid = fake.delegate(issue_ref, user)
            created = [d for d in fake.deliveries if d.agent_session_id == sid]
            return {"agent_session_id": sid, "delivery_id": created[-1].id}

        return handler

    def prompt(data: dict[str, Any]) -> dict[str, Any]:
        session, user = str(_field(data, "session")), str(_field(data, "user"))
        return {"delivery_id": fake.prompt(session, user, str(_field(data, "body"))).id}

    def stop(data: dict[str, Any]) -> dict[str, Any]:
        session, user = str(_field(data, "session")), str(_field(data, "user"))
        return {"delivery_id": fake.stop_session(session, user).id}

    def fail(data: dict[str, Any]) -> None:
        status, times = data.get("status", 500), data.get("times", 1)
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError("expected 'status': an HTTP error status")
        if not isinstance(times, int) or not 1 <= times <= 100:
            raise ValueError("expected 'times': 1 to 100")
        fake.fail_next(
            str(_field(data, "field")),
            status=status,
            apply=data.get("apply") is True,
            times=times,
        )

    def workspace(_data: dict[str, Any]) -> dict[str, Any]:
        state = fake.state

        def dump() -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name in ("orgs", "teams", "projects", "labels", "users", "issues"):
                out[name] = [dataclasses.asdict(r) for r in getattr(state, name).values()]
            for team in out["teams"]:
                team["states"] = [dataclasses.asdict(s) for s in state.team_states(team["id"])]
            return out

        return state.snapshot(dump)

    post = {
        "token": token,
        "users": lambda d: fake.add_user(str(_field(d, "name")), str(_field(d, "email"))),
        "teams": lambda d: fake.add_team(str(_field(d, "key")), str(_field(d, "name"))),
        "projects": lambda d: fake.add_project(str(_field(d, "name"))),
        "labels": lambda d: fake.add_label(
            str(_field(d, "name")), team_id=_field(d, "team", required=False)
        ),
        "issues": issue,
        "webhook": webhook,
        "mention": start("mention"),
        "delegate": start("delegate"),
        "prompt": prompt,
        "stop": stop,
        "authorize/refuse": lambda _d: fake.refuse_next_authorize(),
        "fail": fail,
        "deliveries/{delivery_id}/replay": lambda d: {
            "delivery_id": fake.replay(str(d["delivery_id"])).id
        },
    }
    get = {
        "workspace": workspace,
        "sessions": lambda _d: {"sessions": [session_json(s) for s in fake.sessions()]},
        "sessions/{session_id}": lambda d: session_json(fake.session(str(d["session_id"]))),
    }

    async def deliveries(request: Request) -> Response:
        refused = await wait_asked(request, fake.wait_for_deliveries)
        if refused is not None:
            return refused
        return JSONResponse({"ok": True, "deliveries": [delivery_json(d) for d in fake.deliveries]})

    return [
        *(Route(f"/_fake/{path}", _json_endpoint(h), methods=["POST"]) for path, h in post.items()),
        *(Route(f"/_fake/{path}", _json_endpoint(h), methods=["GET"]) for path, h in get.items()),
        Route("/_fake/deliveries", deliveries, methods=["GET"]),
    ]
