"""Failing CI in the fake GitHub, read with the real clients: signed ``check_run`` and
``workflow_run`` deliveries in githubkit's webhook shapes, check runs, jobs and the log behind
its redirect (``Range`` honoured), read through ``scm.github.GitHub`` with the App's token."""

from __future__ import annotations

import httpx
import pytest
from githubkit_schemas.latest import models
from pydantic import TypeAdapter

from openinspect.errors import ScmError
from openinspect.scm.base import RepoRef
from openinspect.scm.github import GitHub
from openinspect.scm.webhooks import verify_signature
from openinspect.testing.github import FakeGitHub
from tests.testing import test_github_server as server_tests
from tests.testing.test_github_server import Receiver

REPO = "acme/widgets"
REF = RepoRef("acme", "widgets")
LOG = "".join(f"2026-12-02T10:00:{n % 60:02d}Z line {n}\n" for n in range(5000))


receiver = server_tests.receiver
fake = server_tests.fake


def open_pull(fake: FakeGitHub) -> int:
    fake.commit(REPO, "feature", {"calc.py": "broken = True\n"}, by="alice")
    token = fake.user_token("alice")
    made = httpx.post(
        f"{fake.api_url}/repos/{REPO}/pulls",
        headers={"Authorization": f"Bearer {token}"},
        json={"title": "Feature", "head": "feature", "base": "main"},
    )
    assert made.status_code == 201, made.text
    number: int = made.json()["number"]
    return number


async def test_a_failed_check_is_delivered_signed_in_githubs_shapes(
    fake: FakeGitHub, receiver: Receiver
) -> None:
    number = open_pull(fake)
    fake.subscribe_webhooks(receiver.url)
    sent = fake.fail_check(REPO, number, name="tests (3.12)", log=LOG, summary="2 failed")
    assert [(d.event, d.action, d.status_code) for d in sent] == [
        ("check_run", "completed", 202),
        ("workflow_run", "completed", 202),
    ]
    for headers, body in receiver.received[-2:]:
        verify_signature(fake.webhook_secret.encode(), body, headers["x-hub-signature-256"])
    check = TypeAdapter(models.WebhookCheckRunCompleted).validate_python(sent[0].payload)
    run = TypeAdapter(models.WebhookWorkflowRunCompleted).validate_python(sent[1].payload)
    head = fake.pull(REPO, number).head_sha
    assert (check.check_run.name, check.check_run.conclusion) == ("tests (3.12)", "failure")
    assert check.check_run.head_sha == head == run.workflow_run.head_sha
    assert [p.number for p in check.check_run.pull_requests] == [number]
    assert check.check_run.app is not None and check.check_run.app.slug == "github-actions"
    assert run.workflow_run.conclusion == "failure" and run.workflow_run.run_attempt == 1
    assert run.workflow_run.head_branch == "feature"


async def test_check_runs_jobs_and_the_logs_tail_through_the_client(
    fake: FakeGitHub, receiver: Receiver
) -> None:
    number = open_pull(fake)
    fake.subscribe_webhooks(receiver.url)
    [check, run] = [d.payload for d in fake.fail_check(REPO, number, log=LOG, summary="bad")]
    check_id, run_id = check["check_run"]["id"], run["workflow_run"]["id"]
    async with GitHub(fake.settings()) as gh:
        got = await gh.get_check_run(REF, check_id)
        assert (got.id, got.name, got.conclusion, got.app) == (
            check_id,
            "tests",
            "failure",
            "github-actions",
        )
        assert got.summary == "bad" and got.title == "Tests failed"
        jobs = await gh.workflow_jobs(REF, run_id, 1)
        assert [(j.id, j.conclusion) for j in jobs] == [(check_id, "failure")]
        assert await gh.workflow_jobs(REF, run_id, 2) == []
        tail = await gh.job_log_tail(REF, check_id, 1000)
        with pytest.raises(ScmError):
            await gh.job_log_tail(REF, 999_999, 1000)
    assert LOG.endswith(tail) and len(tail.encode()) == 1000
    # Only the tail crossed the wire: the log URL was asked for its last 1,000 bytes.
    [redirect] = fake.requests_to("GET", rf"/actions/jobs/{check_id}/logs$")
    assert (redirect.status, redirect.auth) == (302, "installation")
    [blob] = fake.requests_to("GET", r"^/_blobs/job-logs/")
    assert blob.status == 206


def test_the_log_url_is_the_key_and_reading_needs_the_permission(
    fake: FakeGitHub, receiver: Receiver
) -> None:
    number = open_pull(fake)
    fake.subscribe_webhooks(receiver.url)
    [check] = [d.payload for d in fake.fail_check(REPO, number, events=("check_run",))]
    job_id = check["check_run"]["id"]
    token = fake.user_token("alice")
    answer = httpx.get(
        f"{fake.api_url}/repos/{REPO}/actions/jobs/{job_id}/logs",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert httpx.get(location).text.endswith("Error: the tests failed\n")
    assert httpx.get(location[:-3] + "xyz").status_code == 404
    narrow = fake.add_installation([REPO], permissions={"contents": "read"})
    minted = fake.mint_installation_token(narrow)
    refused = httpx.get(
        f"{fake.api_url}/repos/{REPO}/check-runs/{job_id}",
        headers={"Authorization": f"Bearer {minted.token}"},
    )
    assert refused.status_code == 403
