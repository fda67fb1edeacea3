"""The fake Linear's GraphQL API driven as the product drives it: the contract's documents over
HTTP with a bearer token, answered in Linear's shapes (data, errors, codes, HTTP statuses)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from graphql import parse, validate

from openinspect.testing.linear import FakeLinear
from openinspect.testing.linear.schema import executable_schema, sdl
from tests.testing.linear.documents import (
    AGENT_ACTIVITY,
    AGENT_ACTIVITY_CREATE,
    AGENT_SESSION_UPDATE,
    CONTRACT,
    ISSUE,
    ISSUE_UPDATE,
    TEAM_STARTED_STATES,
    USER,
    VIEWER,
    data,
    error,
    new_issue,
    post,
)


def create(
    fake: FakeLinear, token: str, session: str, content: dict[str, Any], **extra: Any
) -> Any:
    variables = {"input": {"agentSessionId": session, "content": content, **extra}}
    return post(fake, token, AGENT_ACTIVITY_CREATE, variables)


def test_every_contract_document_validates_against_the_schema() -> None:
    schema = executable_schema()
    for name, document in CONTRACT.items():
        assert validate(schema, parse(document)) == [], name
    assert "type Query" in sdl() and "github.com/linear/linear" in sdl()


def test_viewer_user_issue_and_started_states(linear: FakeLinear) -> None:
    token = linear.token()
    viewer = data(post(linear, token, VIEWER))["viewer"]
    org = linear.org
    assert viewer == {
        "id": linear.app_user_id,
        "name": "openinspect",
        "organization": {"id": org.id, "name": org.name, "urlKey": org.url_key},
    }
    alice = linear.add_user("Alice A", "alice@example.com")
    assert data(post(linear, token, USER, {"id": alice.id}))["user"] == {
        "id": alice.id,
        "name": "Alice A",
        "email": "alice@example.com",
    }
    project = linear.add_project("Web")
    team, issue = new_issue(linear, description="It breaks", project=project.id, labels=["bug"])
    for ref in (issue.id, issue.identifier):
        got = data(post(linear, token, ISSUE, {"id": ref}))["issue"]
        assert got["identifier"] == issue.identifier and got["description"] == "It breaks"
        assert got["team"] == {"id": team.id, "key": team.key, "name": "Team"}
        assert got["project"] == {"id": project.id, "name": "Web"}
        assert [n["name"] for n in got["labels"]["nodes"]] == ["bug"]
        assert got["state"]["type"] == "unstarted"
        assert got["url"].startswith(f"https://linear.app/fake/issue/{issue.identifier}/")
    started = data(post(linear, token, TEAM_STARTED_STATES, {"id": team.id}))["team"]["states"]
    assert [(s["name"], s["position"], s["type"]) for s in started["nodes"]] == [
        ("In Progress", 2.0, "started"),
        ("In Review", 3.0, "started"),
    ]


def test_issue_update_moves_the_issue_and_checks_references(linear: FakeLinear) -> None:
    token = linear.token()
    team, issue = new_issue(linear)
    first_started = next(s for s in linear.team_states(team.id) if s.type == "started")
    answer = post(
        linear,
        token,
        ISSUE_UPDATE,
        {"id": issue.id, "input": {"stateId": first_started.id, "delegateId": linear.app_user_id}},
    )
    assert data(answer) == {"issueUpdate": {"success": True}}
    moved = linear.issue(issue.id)
    assert moved.state_id == first_started.id and moved.delegate_id == linear.app_user_id
    assert moved.started_at is not None and moved.updates[-1]["stateId"] == first_started.id
    other_team, _ = new_issue(linear)
    foreign = linear.team_states(other_team.id)[0]
    bad = post(
        linear,
        token,
        ISSUE_UPDATE,
        {"id": issue.id, "input": {"stateId": foreign.id, "title": "renamed"}},
    )
    assert error(bad)["message"] == "Entity not found: WorkflowState"
    assert linear.issue(issue.id).title == "Fix the bug"  # nothing of a refused update applies


def test_activities_append_and_derive_the_session_state(linear: FakeLinear) -> None:
    token = linear.token()
    alice = linear.add_user("Al", "al@example.com")
    _, issue = new_issue(linear)
    sid = linear.delegate(issue.id, alice.id)
    assert linear.session(sid).status == "pending"
    running = {"type": "action", "action": "Running", "parameter": "pytest"}
    ran = {"type": "action", "action": "Ran", "parameter": "pytest", "result": "3 passed"}
    steps: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        ({"type": "thought", "body": "Looking"}, {"ephemeral": True}, "active"),
        (running, {"ephemeral": True}, "active"),
        (ran, {}, "active"),
        (
            {"type": "elicitation", "body": "Which repo?"},
            {"signal": "select", "signalMetadata": {"options": [{"value": "acme/web"}]}},
            "awaitingInput",
        ),
        ({"type": "error", "body": "Boom"}, {}, "error"),
        ({"type": "response", "body": "Done: https://github.com/acme/web/pull/1"}, {}, "complete"),
    ]
    for content, extra, status in steps:
        assert data(create(linear, token, sid, content, **extra))["agentActivityCreate"]["success"]
        assert linear.session(sid).status == status
    session = linear.session(sid)
    assert [a.type for a in session.activities] == [
        "thought",
        "action",
        "action",
        "elicitation",
        "error",
        "response",
    ]
    assert [a.superseded for a in session.activities][:3] == [True, True, False]
    times = [a.created_at for a in session.activities]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert session.activities[3].signal == "select"
    assert session.started_at is not None and session.ended_at == times[-1]
    shown = data(
        post(
            linear,
            token,
            """query S($id: String!) { agentSession(id: $id) {
        status activities { nodes { content { __typename ... on AgentActivityActionContent {
        action result } ... on AgentActivityResponseContent { body } } } } } }""",
            {"id": sid},
        )
    )
    nodes = shown["agentSession"]["activities"]["nodes"]
    assert shown["agentSession"]["status"] == "complete"
    # The two superseded ephemeral activities are hidden, as in Linear.
    assert [n["content"]["__typename"] for n in nodes] == [
        "AgentActivityActionContent",
        "AgentActivityElicitationContent",
        "AgentActivityErrorContent",
        "AgentActivityResponseContent",
    ]
    assert nodes[0]["content"] == {
        "__typename": "AgentActivityActionContent",
        "action": "Ran",
        "result": "3 passed",
    }
    linear.prompt(sid, alice.id, "one more thing")
    assert linear.session(sid).status == "pending" and linear.session(sid).ended_at is None


def test_a_client_id_is_kept_once_and_found_again(linear: FakeLinear) -> None:
    token = linear.token()
    _, issue = new_issue(linear)
    sid = linear.delegate(issue.id, linear.admin_user_id)
    activity_id = str(uuid.uuid4())
    first = create(linear, token, sid, {"type": "thought", "body": "hi"}, id=activity_id)
    assert data(first)["agentActivityCreate"]["agentActivity"]["id"] == activity_id
    again = create(linear, token, sid, {"type": "thought", "body": "hi"}, id=activity_id)
    assert again.status_code == 200
    err = error(again)
    assert err["message"] == "conflict on insert of AgentActivity"
    assert err["extensions"]["code"] == "INPUT_ERROR"
    assert err["extensions"]["userPresentableMessage"] == (
        f"Entity AgentActivity with id {activity_id} already exists."
    )
    assert again.json()["data"] is None and len(linear.session(sid).activities) == 1
    found = post(linear, token, AGENT_ACTIVITY, {"id": activity_id})
    assert data(found) == {"agentActivity": {"id": activity_id}}
    missing = post(linear, token, AGENT_ACTIVITY, {"id": str(uuid.uuid4())})
    assert missing.status_code == 200 and missing.json()["data"] is None
    assert error(missing)["message"] == "Entity not found: AgentActivity"
    assert error(missing)["extensions"]["userPresentableMessage"] == (
        "Could not find referenced AgentActivity."
    )
    v5 = str(uuid.uuid5(uuid.NAMESPACE_URL, "openinspect:thought:x"))
    refused = error(create(linear, token, sid, {"type": "thought", "body": "x"}, id=v5))
    assert refused["extensions"]["code"] == "INVALID_INPUT"
    assert "UUID v4" in refused["extensions"]["userPresentableMessage"]


@pytest.mark.parametrize(
    ("content", "extra", "hint"),
    [
        ({"type": "thought"}, {}, "content.body"),
        ({"type": "response", "body": "  "}, {}, "content.body"),
        ({"type": "action", "action": "Run"}, {}, "content.parameter"),
        ({"type": "prompt", "body": "hi"}, {}, "created by people"),
        ({"type": "chat", "body": "hi"}, {}, "content.type"),
        ({"type": "response", "body": "done"}, {"ephemeral": True}, "ephemeral"),
        ({"body": "no type"}, {}, "content.type"),
    ],
)
def test_content_is_checked_by_type(
    linear: FakeLinear, content: dict[str, Any], extra: dict[str, Any], hint: str
) -> None:
    _, issue = new_issue(linear)
    sid = linear.delegate(issue.id, linear.admin_user_id)
    err = error(create(linear, linear.token(), sid, content, **extra))
    assert err["message"] == "Argument Validation Error"
    assert err["extensions"]["code"] == "INVALID_INPUT"
    assert hint in err["extensions"]["userPresentableMessage"]
    assert linear.session(sid).activities == []


def test_session_update_sets_links_and_plan(linear: FakeLinear) -> None:
    token = linear.token()
    _, issue = new_issue(linear)
    sid = linear.delegate(issue.id, linear.admin_user_id)
    web = {"label": "openinspect", "url": "http://127.0.0.1:8000/sessions/s1"}
    pr = {"label": "Pull request", "url": "https://github.com/acme/web/pull/7"}
    update = {"externalUrls": [web], "plan": [{"content": "Fix", "status": "inProgress"}]}
    answer = post(linear, token, AGENT_SESSION_UPDATE, {"id": sid, "input": update})
    assert data(answer) == {"agentSessionUpdate": {"success": True}}
    session = linear.session(sid)
    assert [(x.label, x.url) for x in session.external_links] == [(web["label"], web["url"])]
    assert session.plan == [{"content": "Fix", "status": "inProgress"}]
    post(linear, token, AGENT_SESSION_UPDATE, {"id": sid, "input": {"addedExternalUrls": [pr]}})
    assert [x.url for x in linear.session(sid).external_links] == [web["url"], pr["url"]]
    post(
        linear,
        token,
        AGENT_SESSION_UPDATE,
        {"id": sid, "input": {"removedExternalUrls": [web["url"]]}},
    )
    assert [x.url for x in linear.session(sid).external_links] == [pr["url"]]
    links = data(
        post(
            linear,
            token,
            "query L($id: String!) { agentSession(id: $id) { externalLinks { label url } } }",
            {"id": sid},
        )
    )
    assert links["agentSession"]["externalLinks"] == [pr]
    for bad in (
        {"plan": [{"content": "x", "status": "doing"}]},
        {"plan": {"steps": []}},
        {"externalUrls": [{"label": "x", "url": "javascript:alert(1)"}]},
    ):
        err = error(post(linear, token, AGENT_SESSION_UPDATE, {"id": sid, "input": bad}))
        assert err["extensions"]["code"] == "INVALID_INPUT"
    assert [x.url for x in linear.session(sid).external_links] == [pr["url"]]
    assert len(linear.session(sid).updates) == 3


def test_only_the_sessions_app_may_write_to_it(linear: FakeLinear) -> None:
    _, issue = new_issue(linear)
    sid = linear.delegate(issue.id, linear.admin_user_id)
    other = linear.add_org("Other", "other")
    outsiders = [linear.token(org_id=other.id), linear.token(actor="user")]
    for token in outsiders:
        err = error(create(linear, token, sid, {"type": "thought", "body": "hi"}))
        assert err["message"] == "Entity not found: AgentSession"
    err = error(post(linear, outsiders[0], ISSUE, {"id": issue.id}))
    assert err["message"] == "Entity not found: Issue"
    read_only = linear.token(scopes=["read"])
    err = error(create(linear, read_only, sid, {"type": "thought", "body": "hi"}))
    assert err["extensions"]["code"] == "FORBIDDEN"
    assert linear.session(sid).activities == []


def test_tokens_are_checked_on_every_request(linear: FakeLinear) -> None:
    token = linear.token()
    for bad_token in (None, "lin_oauth_nope"):
        answer = post(linear, bad_token, VIEWER)
        assert answer.status_code == 401
        assert error(answer)["extensions"]["code"] == "AUTHENTICATION_ERROR"
    linear.expire_token(token)
    assert post(linear, token, VIEWER).status_code == 401
    revoked = linear.token()
    linear.revoke_token(revoked)
    assert post(linear, revoked, VIEWER).status_code == 401
    kinds = [c.token_kind for c in linear.calls()[-4:]]
    assert kinds == ["missing", "invalid", "expired", "invalid"]


def test_bad_documents_fail_loudly(linear: FakeLinear) -> None:
    token = linear.token()
    typo = post(linear, token, "query { viewer { id nmae } }")
    assert typo.status_code == 400
    assert error(typo)["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "nmae" in error(typo)["message"] and error(typo)["locations"]
    unparsable = post(linear, token, "query { viewer { id }")
    assert unparsable.status_code == 400
    assert error(unparsable)["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    wrong_variable = post(linear, token, USER, {"id": 42})
    assert wrong_variable.status_code == 400
    assert error(wrong_variable)["extensions"]["code"] == "INVALID_INPUT"
    for rounds, status in ((3, 200), (5, 400)):  # 11 levels deep, then 17 (the cap is 12)
        inner = "id"
        for _ in range(rounds):
            inner = f"activities {{ nodes {{ agentSession {{ {inner} }} }} }}"
        answer = post(linear, token, f'{{ agentSession(id: "x") {{ {inner} }} }}')
        assert answer.status_code == status, answer.json()


def test_injected_failures(linear: FakeLinear) -> None:
    token = linear.token()
    _, issue = new_issue(linear)
    sid = linear.delegate(issue.id, linear.admin_user_id)
    linear.fail_next("agentActivityCreate", status=500)
    failed = create(linear, token, sid, {"type": "thought", "body": "a"})
    assert (
        failed.status_code == 500 and error(failed)["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    )
    assert linear.session(sid).activities == []
    lost_id = str(uuid.uuid4())
    linear.fail_next("agentActivityCreate", status=502, apply=True)
    lost = create(linear, token, sid, {"type": "thought", "body": "b"}, id=lost_id)
    assert lost.status_code == 502
    assert [a.id for a in linear.session(sid).activities] == [lost_id]  # written, answer lost
    linear.fail_next("agentActivityCreate", status=429)
    limited = create(linear, token, sid, {"type": "thought", "body": "c"})
    assert limited.status_code == 429 and error(limited)["extensions"]["code"] == "RATELIMITED"
    assert limited.headers["x-ratelimit-requests-remaining"] == "0"
    assert data(create(linear, token, sid, {"type": "thought", "body": "d"}))
    statuses = [c.status for c in linear.calls("agentActivityCreate")[-4:]]
    assert statuses == [500, 502, 429, 200]
