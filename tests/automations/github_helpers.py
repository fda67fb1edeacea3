"""GitHub automations under test: payloads in GitHub's shapes, a control plane on the fake GitHub
(sessions really run: the runtime in-process, the scripted model, git through the proxy), and
deliveries signed as GitHub signs them."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx

from openinspect.controlplane import ControlPlane
from openinspect.scm.webhooks import sign
from openinspect.testing.asgi import InApp
from openinspect.testing.github import FakeGitHub
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.automations.conftest import plane_settings
from tests.sessions.bridged import bridged_plane

REPO = "acme/widgets"
SHA = "a" * 40


def repository(full_name: str = REPO) -> dict[str, Any]:
    owner, _, name = full_name.partition("/")
    return {"id": 7, "full_name": full_name, "name": name, "owner": {"login": owner}}


def pull_request(
    action: str = "opened", number: int = 12, repo: str = REPO, **pull: Any
) -> dict[str, Any]:
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "title": "Faster widgets",
            "body": "It is faster.",
            "html_url": f"https://github.com/{repo}/pull/{number}",
            "state": "open",
            "user": {"login": "alice", "id": 1},
            "head": {"ref": "feature/speed", "sha": SHA},
            "base": {"ref": "main", "sha": "b" * 40},
            "labels": [{"name": "bug"}],
            **pull,
        },
        "repository": repository(repo),
        "sender": {"login": "alice"},
    }


def issue_comment(
    comment_id: int = 9001, repo: str = REPO, body: str = "Please look"
) -> dict[str, Any]:
    return {
        "action": "created",
        "issue": {
            "number": 5,
            "title": "Widgets break",
            "user": {"login": "bob"},
            "labels": [],
            "pull_request": {"url": f"https://api.github.com/repos/{repo}/pulls/5"},
        },
        "comment": {"id": comment_id, "body": body, "user": {"login": "carol"}},
        "repository": repository(repo),
        "sender": {"login": "carol"},
    }


def check_run(
    number: int,
    *,
    branch: str,
    head_sha: str = SHA,
    check_id: int = 4242,
    conclusion: str = "failure",
    repo: str = REPO,
    app: str = "some-ci",
) -> dict[str, Any]:
    return {
        "action": "completed",
        "check_run": {
            "id": check_id,
            "name": "tests",
            "head_sha": head_sha,
            "status": "completed",
            "conclusion": conclusion,
            "html_url": f"https://ci.example/runs/{check_id}",
            "output": {"title": "1 failed", "summary": "test_speed failed", "text": None},
            "check_suite": {"id": 55, "head_branch": branch},
            "app": {"slug": app},
            "pull_requests": [
                {
                    "number": number,
                    "head": {"ref": branch, "sha": head_sha},
                    "base": {"ref": "main"},
                }
            ],
        },
        "repository": repository(repo),
        "sender": {"login": "ci[bot]"},
    }


def delivery_headers(
    secret: str, body: bytes, event: str, delivery_id: str | None = None
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret.encode(), body),
    }


async def deliver(
    http: httpx.AsyncClient,
    secret: str,
    event: str,
    payload: dict[str, Any],
    delivery_id: str | None = None,
) -> httpx.Response:
    """POST one delivery to ``/webhooks/github``, signed with ``secret``."""
    body = json.dumps(payload).encode()
    return await http.post(
        "/webhooks/github", content=body, headers=delivery_headers(secret, body, event, delivery_id)
    )


@contextmanager
def fake_github(origin: Path) -> Iterator[FakeGitHub]:
    """The fake GitHub with ``acme/widgets`` (from ``origin``) and the App installed on it."""
    with FakeGitHub() as gh:
        gh.add_user("acme")
        gh.create_repo(REPO, source=origin)
        gh.add_installation([REPO])
        yield gh


@asynccontextmanager
async def github_plane(
    home: Path, llm: ScriptedLLMServer, fake: FakeGitHub
) -> AsyncIterator[tuple[ControlPlane, InApp]]:
    """A control plane on the fake GitHub (App, webhook secret; no OAuth sign-in, so the admin
    may start sessions on its repos) whose sessions run and push, and the API on it."""
    settings = plane_settings(home, llm)
    settings = settings.model_copy(
        update={"github": fake.settings(client_id=None, client_secret=None)}
    )
    async with (
        bridged_plane(settings, git_proxy=True, in_process=True) as plane,
        InApp.open(plane) as app,
    ):
        yield plane, app


def repo_url(fake: FakeGitHub) -> str:
    return f"{fake.url}/{REPO}"
