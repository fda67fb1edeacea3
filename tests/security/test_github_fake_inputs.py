"""The fake GitHub's new doors (diffs, reviews, review comments, issue comments, reactions,
permissions, the control calls that make people act): bodies are capped, malformed input is
refused with GitHub's error JSON (never a 500), nothing sent is echoed back, and a caller who
may not see a private repo learns nothing about it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.testing.github import conftest
from tests.testing.github.conftest import Repo

MARKER = "SECRET-PAYLOAD-7f3a"

sample = conftest.sample
hook = conftest.hook
fake = conftest.fake
repo = conftest.repo


def call(repo: Repo, method: str, path: str, token: str | None, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    url = f"{repo.fake.api_url}/repos/{repo.full_name}{path}"
    return httpx.request(method, url, headers=headers, timeout=10, **kw)


def refused(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, response.text
    assert MARKER not in response.text
    assert "message" in response.json()


@pytest.fixture
def pull(repo: Repo) -> int:
    return repo.open_fix()


def test_malformed_bodies_are_refused_without_echo(repo: Repo, pull: int) -> None:
    token = repo.fake.mint_installation_token(repo.installation_id).token
    posts = [
        f"/pulls/{pull}/reviews",
        f"/pulls/{pull}/comments",
        f"/issues/{pull}/comments",
        f"/issues/{pull}/reactions",
    ]
    for path in posts:
        broken = call(repo, "POST", path, token, content=f'{{"body": "{MARKER}"'.encode())
        refused(broken, 400)
        listed = call(repo, "POST", path, token, json=[MARKER])
        refused(listed, 400)
    shapes: list[dict[str, Any]] = [
        {"event": "COMMENT", "comments": MARKER},
        {"event": "COMMENT", "comments": [MARKER]},
        {"event": "COMMENT", "comments": [{"path": "calc.py", "line": MARKER, "body": "x"}]},
        {"event": "COMMENT", "comments": [{"path": "calc.py", "line": 3, "side": MARKER}]},
        {"event": "COMMENT", "comments": [{"path": ["calc.py"], "line": 3, "body": "x"}]},
        {"event": "COMMENT", "comments": [{"path": "calc.py", "line": True, "body": "x"}]},
        {"event": MARKER, "body": "x"},
        {"event": "COMMENT", "body": {"text": MARKER}},
        {"event": "COMMENT", "body": "x", "commit_id": MARKER},
    ]
    for body in shapes:
        refused(call(repo, "POST", f"/pulls/{pull}/reviews", token, json=body), 422)
    singles: list[dict[str, Any]] = [
        {"body": MARKER, "commit_id": MARKER, "path": "calc.py", "line": 3},
        {"body": MARKER, "in_reply_to": MARKER},
        {"body": MARKER, "commit_id": "0" * 40, "path": "../../etc/passwd", "line": 1},
        {"body": ["x"], "path": "calc.py", "line": 3},
    ]
    for body in singles:
        refused(call(repo, "POST", f"/pulls/{pull}/comments", token, json=body), 422)
    for content in (MARKER, None, 1, ["eyes"]):
        answer = call(repo, "POST", f"/issues/{pull}/reactions", token, json={"content": content})
        refused(answer, 422)
    huge = call(repo, "POST", f"/issues/{pull}/comments", token, content=b"x" * (1024 * 1024 + 1))
    refused(huge, 413)
    long = call(repo, "POST", f"/issues/{pull}/comments", token, json={"body": "y" * 70_000})
    refused(long, 422)
    bad_page = call(repo, "GET", f"/pulls/{pull}/files", token, params={"per_page": MARKER})
    refused(bad_page, 400)
    assert repo.fake.reviews(repo.full_name, pull) == []
    assert repo.fake.pull(repo.full_name, pull).comments == []
    assert repo.fake.reactions(repo.full_name) == []


def test_a_private_repo_is_hidden_from_people_without_access(repo: Repo, pull: int) -> None:
    bob = repo.fake.user_token("bob")  # no access to acme's private repos
    for token in (None, bob):
        for method, path, body in [
            ("GET", f"/pulls/{pull}/files", None),
            ("GET", f"/pulls/{pull}/reviews", None),
            ("POST", f"/pulls/{pull}/reviews", {"event": "COMMENT", "body": "x"}),
            ("GET", f"/pulls/{pull}/comments", None),
            ("POST", f"/issues/{pull}/comments", {"body": "x"}),
            ("GET", f"/issues/{pull}/comments", None),
            ("POST", f"/issues/{pull}/reactions", {"content": "eyes"}),
            ("GET", "/collaborators/alice/permission", None),
        ]:
            answer = call(repo, method, path, token, json=body)
            assert (answer.status_code, answer.json()["message"]) == (404, "Not Found")
    assert repo.fake.reviews(repo.full_name, pull) == []


def test_control_calls_refuse_malformed_input(repo: Repo, pull: int) -> None:
    base = f"{repo.fake.url}/_fake/pulls/{repo.full_name}"
    cases: list[tuple[str, Any]] = [
        (f"{base}/{pull}/reviews", {"event": "COMMENT", "by": "carol", "comments": MARKER}),
        (f"{base}/{pull}/reviews", {"event": "COMMENT"}),
        (f"{base}/{pull}/comments", {"body": "x"}),
        (f"{base}/{pull}/review-comments", {"body": "x", "by": "carol", "line": MARKER}),
        (f"{base}", {"head": "nope", "by": "alice"}),
        (f"{base}", [MARKER]),
    ]
    for url, body in cases:
        answer = httpx.post(url, json=body)
        assert 400 <= answer.status_code < 500, (url, answer.text)
    huge = httpx.post(f"{base}/{pull}/comments", content=b"x" * (1024 * 1024 + 1))
    assert huge.status_code == 413
    assert repo.fake.pull(repo.full_name, pull).comments == []
