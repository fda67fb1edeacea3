"""The fake Linear's own doors (GraphQL, OAuth, control endpoints): sizes are capped, malformed
input is refused with a fixed error, and nothing sent is echoed back."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from openinspect.testing.linear import FakeLinear

MARKER = "SECRET-PAYLOAD-7f3a"


@pytest.fixture(scope="module")
def linear() -> Iterator[FakeLinear]:
    with FakeLinear(attempts=1) as fake:
        yield fake


def no_echo(response: httpx.Response) -> None:
    assert MARKER not in response.text
    assert "lin_oauth_" not in response.text


def test_graphql_refuses_oversized_and_malformed_requests(linear: FakeLinear) -> None:
    auth = {"Authorization": f"Bearer {linear.token()}"}
    url = linear.graphql_url
    with httpx.Client(timeout=15) as http:
        huge = http.post(url, content=b"x" * (1024 * 1024 + 1), headers=auth)
        assert huge.status_code == 413
        for body in (
            b"{not json " + MARKER.encode(),
            json.dumps([MARKER]).encode(),
            json.dumps({"query": 5, "x": MARKER}).encode(),
            json.dumps({"query": "{ viewer { id } }", "variables": [MARKER]}).encode(),
            json.dumps({"query": "{ viewer { id } }", "operationName": [MARKER]}).encode(),
            b"\xff\xfe" + MARKER.encode(),
        ):
            answer = http.post(
                url, content=body, headers={**auth, "Content-Type": "application/json"}
            )
            assert answer.status_code == 400
            assert answer.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
            no_echo(answer)
        many = "{ " + " ".join(f"a{i}: viewer {{ id }}" for i in range(2000)) + " }"
        assert http.post(url, json={"query": many}, headers=auth).status_code == 400
        bad_value = http.post(
            url,
            headers=auth,
            json={
                "query": "query U($id: String!) { user(id: $id) { id } }",
                "variables": {"id": [MARKER]},
            },
        )
        assert bad_value.status_code == 400
        no_echo(bad_value)
        missing = http.post(
            url,
            headers=auth,
            json={
                "query": "query U($id: String!) { user(id: $id) { id } }",
                "variables": {"id": MARKER},
            },
        )
        assert missing.json()["errors"][0]["message"] == "Entity not found: User"
        no_echo(missing)
        long_token = http.post(
            url,
            json={"query": "{ viewer { id } }"},
            headers={"Authorization": "Bearer " + "x" * 10_000},
        )
        assert long_token.status_code == 401
        unauthenticated = http.post(url, content=MARKER.encode())
        assert unauthenticated.status_code == 401
        no_echo(unauthenticated)


def test_activity_content_is_capped_and_not_echoed(linear: FakeLinear) -> None:
    team = linear.add_team("SEC", "Security")
    issue = linear.add_issue(team.id, "t")
    sid = linear.delegate(issue.id, linear.admin_user_id)
    query = (
        "mutation A($input: AgentActivityCreateInput!) "
        "{ agentActivityCreate(input: $input) { success } }"
    )
    auth = {"Authorization": f"Bearer {linear.token()}"}
    cases = [
        {"type": "thought", "body": MARKER * 10_000},
        {"type": MARKER, "body": "x"},
        {"type": "action", "action": MARKER, "parameter": ""},
    ]
    with httpx.Client(timeout=15) as http:
        for content in cases:
            variables = {"input": {"agentSessionId": sid, "content": content}}
            answer = http.post(
                linear.graphql_url, headers=auth, json={"query": query, "variables": variables}
            )
            assert answer.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
            no_echo(answer)
        for bad in ({"signal": MARKER}, {"content": MARKER}, {MARKER: 1}, {"ephemeral": MARKER}):
            variables = {"input": {"agentSessionId": sid, "content": {}, **bad}}
            answer = http.post(
                linear.graphql_url, headers=auth, json={"query": query, "variables": variables}
            )
            assert answer.status_code == 400, bad
            assert answer.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
            no_echo(answer)
        metadata = {
            "input": {
                "agentSessionId": sid,
                "content": {"type": "thought", "body": "x"},
                "signalMetadata": {"blob": "y" * 70_000},
            }
        }
        answer = http.post(
            linear.graphql_url, headers=auth, json={"query": query, "variables": metadata}
        )
        assert answer.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert linear.session(sid).activities == []


def test_oauth_refuses_without_echo(linear: FakeLinear) -> None:
    with httpx.Client(timeout=15, follow_redirects=False) as http:
        page = http.get(linear.authorize_url, params={"client_id": MARKER})
        assert page.status_code == 400 and page.json()["error"] == "invalid_client"
        no_echo(page)
        long = http.get(
            linear.authorize_url, params={"client_id": linear.client_id, "state": "s" * 5000}
        )
        assert long.status_code == 400
        token_url = f"{linear.api_url}/oauth/token"
        big = http.post(
            token_url,
            content=b"a=" + b"x" * 70_000,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert big.status_code == 413
        for form in (b"code=1&code=2", b"\xff\xfe=" + MARKER.encode()):
            answer = http.post(
                token_url,
                content=form,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
            no_echo(answer)
        wrong = http.post(
            token_url,
            data={
                "grant_type": "authorization_code",
                "code": MARKER,
                "client_id": MARKER,
                "client_secret": MARKER,
            },
        )
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        no_echo(wrong)
        basic = http.post(
            token_url,
            data={"grant_type": "refresh_token"},
            headers={"Authorization": "Basic !!!" + MARKER},
        )
        assert basic.status_code == 401
        no_echo(basic)


def test_control_endpoints_validate_and_cap(linear: FakeLinear) -> None:
    base = linear.base_url
    with httpx.Client(timeout=15) as http:
        assert (
            http.post(f"{base}/_fake/mention", content=b"x" * (256 * 1024 + 1)).status_code == 413
        )
        r = http.post(f"{base}/_fake/mention", content=f"[{MARKER!r}]".encode())
        assert r.status_code == 400
        no_echo(r)
        r = http.post(f"{base}/_fake/mention", json={"issue": MARKER, "user": MARKER})
        assert r.status_code == 404
        no_echo(r)
        r = http.post(f"{base}/_fake/prompt", json={"session": "s", "user": "u"})
        assert r.status_code == 400 and "'body'" in r.json()["error"]
        r = http.post(f"{base}/_fake/teams", json={"key": MARKER.lower(), "name": "x"})
        assert r.status_code == 400
        r = http.post(f"{base}/_fake/webhook", json={"url": "file:///etc/passwd"})
        assert r.status_code == 400
        r = http.post(f"{base}/_fake/fail", json={"field": "issue", "status": 200})
        assert r.status_code == 400
        r = http.get(f"{base}/_fake/deliveries", params={"wait_s": MARKER})
        assert r.status_code == 400
        no_echo(r)
        r = http.get(f"{base}/_fake/sessions/{MARKER}")
        assert r.status_code == 404
        no_echo(r)
        r = http.post(f"{base}/_fake/deliveries/{MARKER}/replay", json={})
        assert r.status_code == 404
        no_echo(r)
        r = http.post(f"{base}/_fake/token", json={"actor": MARKER})
        assert r.status_code == 400
        no_echo(r)
