"""The GraphQL documents the product sends Linear (CONTRACT-13 §3, token for token), and a
helper that posts one as a client does (httpx, JSON body, bearer token)."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from openinspect.testing.linear import FakeLinear, Issue, Team

AGENT_ACTIVITY_CREATE = """
mutation AgentActivityCreate($input: AgentActivityCreateInput!) {
  agentActivityCreate(input: $input) { success agentActivity { id } } }
"""
AGENT_SESSION_UPDATE = """
mutation AgentSessionUpdate($id: String!, $input: AgentSessionUpdateInput!) {
  agentSessionUpdate(id: $id, input: $input) { success } }
"""
AGENT_ACTIVITY = "query AgentActivity($id: String!) { agentActivity(id: $id) { id } }"
ISSUE = """
query Issue($id: String!) { issue(id: $id) { id identifier title description url
  team { id key name } project { id name } labels { nodes { id name } } state { id type } } }
"""
USER = "query User($id: String!) { user(id: $id) { id name email } }"
VIEWER = "query Viewer { viewer { id name organization { id name urlKey } } }"
TEAM_STARTED_STATES = """
query TeamStartedStates($id: String!) { team(id: $id) {
  states(filter: { type: { eq: "started" } }) { nodes { id name position type } } } }
"""
ISSUE_UPDATE = """
mutation IssueUpdate($id: String!, $input: IssueUpdateInput!) {
  issueUpdate(id: $id, input: $input) { success } }
"""
CONTRACT = {
    "AgentActivityCreate": AGENT_ACTIVITY_CREATE,
    "AgentSessionUpdate": AGENT_SESSION_UPDATE,
    "AgentActivity": AGENT_ACTIVITY,
    "Issue": ISSUE,
    "User": USER,
    "Viewer": VIEWER,
    "TeamStartedStates": TEAM_STARTED_STATES,
    "IssueUpdate": ISSUE_UPDATE,
}

_keys = itertools.count(1)


def post(
    fake: FakeLinear,
    token: str | None,
    query: str,
    variables: dict[str, Any] | None = None,
    **kw: Any,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body: dict[str, Any] = {"query": query, "variables": variables or {}}
    return httpx.post(fake.graphql_url, json=body, headers=headers, timeout=10, **kw)


def data(response: httpx.Response) -> dict[str, Any]:
    """The ``data`` of a successful answer (fails the test with the errors otherwise)."""
    payload: dict[str, Any] = response.json()
    assert response.status_code == 200 and "errors" not in payload, payload
    result: dict[str, Any] = payload["data"]
    return result


def error(response: httpx.Response) -> dict[str, Any]:
    """The first error of an answer that has one."""
    payload: dict[str, Any] = response.json()
    assert payload.get("errors"), payload
    first: dict[str, Any] = payload["errors"][0]
    return first


def new_issue(fake: FakeLinear, **kw: Any) -> tuple[Team, Issue]:
    """A fresh team (its own key, so tests sharing a fake never collide) and an issue in it."""
    team = fake.add_team(f"T{next(_keys)}", "Team")
    return team, fake.add_issue(team.id, kw.pop("title", "Fix the bug"), **kw)
