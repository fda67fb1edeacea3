"""The fake Linear's ``/_fake`` control endpoints: the same as its Python methods, over JSON, for
a test in another process or a person with curl."""

from __future__ import annotations

import httpx

from openinspect.testing.linear import FakeLinear
from tests.testing.linear.conftest import SECRET
from tests.testing.linear.receiver import Receiver


def test_building_a_workspace_and_driving_a_session(linear: FakeLinear, receiver: Receiver) -> None:
    with httpx.Client(base_url=linear.base_url, timeout=15) as http:
        assert http.post("/_fake/webhook", json={"url": receiver.url, "secret": SECRET}).json()[
            "ok"
        ]
        team = http.post("/_fake/teams", json={"key": "CTL", "name": "Control"}).json()
        user = http.post("/_fake/users", json={"name": "Cy", "email": "cy@example.com"}).json()
        project = http.post("/_fake/projects", json={"name": "Ops"}).json()
        label = http.post("/_fake/labels", json={"name": "infra", "team": team["id"]}).json()
        issue = http.post(
            "/_fake/issues",
            json={
                "team": "CTL",
                "title": "Rotate keys",
                "description": "Quarterly",
                "project": project["id"],
                "labels": ["infra"],
                "creator": user["id"],
            },
        ).json()
        assert issue["identifier"] == "CTL-1" and issue["label_ids"] == [label["id"]]
        workspace = http.get("/_fake/workspace").json()
        [ctl] = [t for t in workspace["teams"] if t["key"] == "CTL"]
        assert [s["type"] for s in ctl["states"]][:3] == ["backlog", "unstarted", "started"]
        started = http.post("/_fake/delegate", json={"issue": "CTL-1", "user": user["id"]}).json()
        sid = started["agent_session_id"]
        replayed = http.post(f"/_fake/deliveries/{started['delivery_id']}/replay", json={}).json()
        assert replayed["delivery_id"] == started["delivery_id"]
        deliveries = http.get("/_fake/deliveries", params={"wait_s": "10"}).json()["deliveries"]
        mine = [d for d in deliveries if d["agent_session_id"] == sid]
        assert [(d["action"], d["replay_of"]) for d in mine] == [
            ("created", None),
            ("created", started["delivery_id"]),
        ]
        assert all(d["attempts"][-1]["result"] == 200 for d in mine)
        assert mine[0]["attempts"][0]["response_body"] == "ok" and mine[0]["attempts"][0]["at"] > 0
        sessions = http.get("/_fake/sessions").json()["sessions"]
        assert sid in {s["id"] for s in sessions}
        assert http.get(f"/_fake/sessions/{sid}").json()["status"] == "pending"
        token = http.post(
            "/_fake/token", json={"actor": "user", "user": user["id"], "scopes": ["read"]}
        ).json()["access_token"]
        assert any(t.access_token == token and t.scopes == ["read"] for t in linear.tokens())


def test_failures_and_refusals(linear: FakeLinear) -> None:
    with httpx.Client(base_url=linear.base_url, timeout=15) as http:
        assert http.post("/_fake/fail", json={"field": "viewer", "status": 503}).json()["ok"]
        token = http.post("/_fake/token", json={}).json()["access_token"]
        answer = http.post(
            "/graphql",
            json={"query": "{ viewer { id } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 503
        assert http.post("/_fake/authorize/refuse", json={}).json()["ok"]
    assert linear.oauth_app.refuse == [True]
    linear.oauth_app.refuse.clear()
