"""GitHub events as firings: which deliveries fire, their keys, and the trigger's filters."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from openinspect.automations import github
from openinspect.domain.automations import GithubTrigger
from openinspect.errors import InvalidInput

REPO = {"id": 7, "full_name": "acme/widgets", "private": True, "owner": {"login": "acme"}}
SHA = "a" * 40


def pull_request(action: str = "opened", **pull: Any) -> dict[str, Any]:
    return {
        "action": action,
        "number": 12,
        "pull_request": {
            "number": 12,
            "title": "Faster widgets",
            "body": "It is faster.",
            "html_url": "https://github.com/acme/widgets/pull/12",
            "state": "open",
            "user": {"login": "Alice", "id": 1},
            "head": {"ref": "openinspect/abc", "sha": SHA, "repo": {"id": 7}},
            "base": {"ref": "main", "sha": "b" * 40},
            "labels": [{"id": 1, "name": "Bug", "color": "f00"}],
            "mergeable": None,
            **pull,
        },
        "repository": REPO,
        "sender": {"login": "alice", "id": 1},
        "installation": {"id": 3},
    }


def issue_comment(*, on_pull: bool = True, action: str = "created") -> dict[str, Any]:
    issue: dict[str, Any] = {
        "number": 5,
        "title": "Widgets break",
        "user": {"login": "bob"},
        "labels": [{"name": "triage"}],
        "html_url": "https://github.com/acme/widgets/issues/5",
    }
    if on_pull:
        issue["pull_request"] = {"url": "https://api.github.com/repos/acme/widgets/pulls/5"}
    return {
        "action": action,
        "issue": issue,
        "comment": {
            "id": 9001,
            "body": "@openinspect please look",
            "user": {"login": "carol"},
            "html_url": "https://github.com/acme/widgets/issues/5#issuecomment-9001",
        },
        "repository": REPO,
        "sender": {"login": "carol"},
    }


def check_run(conclusion: str | None = "failure", *, app: str = "github-actions") -> dict[str, Any]:
    return {
        "action": "completed",
        "check_run": {
            "id": 4242,
            "name": "tests (3.12)",
            "head_sha": SHA,
            "status": "completed",
            "conclusion": conclusion,
            "html_url": "https://github.com/acme/widgets/runs/4242",
            "details_url": "https://github.com/acme/widgets/actions/runs/77/job/4242",
            "output": {"title": "2 failed", "summary": "test_speed failed", "text": None},
            "check_suite": {"id": 55, "head_branch": "openinspect/abc", "head_sha": SHA},
            "app": {"id": 15368, "slug": app},
            "pull_requests": [
                {
                    "url": "https://api.github.com/repos/acme/widgets/pulls/12",
                    "id": 1,
                    "number": 12,
                    "head": {"ref": "openinspect/abc", "sha": SHA, "repo": {"id": 7}},
                    "base": {"ref": "main", "sha": "b" * 40, "repo": {"id": 7}},
                }
            ],
        },
        "repository": REPO,
        "sender": {"login": "github-actions[bot]"},
    }


def workflow_run(conclusion: str | None = "failure", attempt: int = 2) -> dict[str, Any]:
    return {
        "action": "completed",
        "workflow_run": {
            "id": 77,
            "name": "CI",
            "head_branch": "openinspect/abc",
            "head_sha": SHA,
            "run_attempt": attempt,
            "status": "completed",
            "conclusion": conclusion,
            "event": "pull_request",
            "html_url": "https://github.com/acme/widgets/actions/runs/77",
            "actor": {"login": "alice"},
            "pull_requests": [{"number": 12, "head": {"ref": "openinspect/abc", "sha": SHA}}],
        },
        "workflow": {"id": 1, "name": "CI"},
        "repository": REPO,
        "sender": {"login": "alice"},
    }


def parsed(event: str, payload: dict[str, Any]) -> github.GithubFiring:
    firing = github.parse(event, payload)
    assert firing is not None
    return firing


@pytest.mark.parametrize(
    ("event", "payload", "kind", "key"),
    [
        ("pull_request", pull_request("opened"), "pull_request.opened", f"pr:12:opened:{SHA}"),
        (
            "pull_request",
            pull_request("synchronize"),
            "pull_request.synchronize",
            f"pr:12:synchronize:{SHA}",
        ),
        ("pull_request", pull_request("closed"), "pull_request.closed", f"pr:12:closed:{SHA}"),
        ("issue_comment", issue_comment(), "issue_comment", "comment:9001"),
        ("issue_comment", issue_comment(on_pull=False), "issue_comment", "comment:9001"),
        ("check_run", check_run("failure"), "check_failed", "check:4242"),
        ("check_run", check_run("timed_out"), "check_failed", "check:4242"),
        ("check_run", check_run("action_required"), "check_failed", "check:4242"),
        ("check_run", check_run("startup_failure"), "check_failed", "check:4242"),
        ("workflow_run", workflow_run("failure"), "check_failed", "workflow:77:2"),
        ("workflow_run", workflow_run("timed_out", 1), "check_failed", "workflow:77:1"),
    ],
)
def test_the_events_we_act_on_and_their_keys(
    event: str, payload: dict[str, Any], kind: str, key: str
) -> None:
    firing = parsed(event, payload)
    assert (firing.kind, firing.key, firing.repo) == (kind, key, "acme/widgets")
    assert github.parse(event, copy.deepcopy(payload)) == firing  # deterministic


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("pull_request", pull_request("edited")),
        ("pull_request", pull_request("labeled")),
        ("issue_comment", issue_comment(action="edited")),
        ("issue_comment", issue_comment(action="deleted")),
        ("check_run", check_run("success")),
        ("check_run", check_run("neutral")),
        ("check_run", check_run("cancelled")),
        ("check_run", check_run("skipped")),
        ("check_run", check_run(None)),
        ("check_run", {**check_run(), "action": "created"}),
        ("workflow_run", workflow_run("success")),
        ("workflow_run", workflow_run("cancelled")),
        ("workflow_run", workflow_run("action_required")),
        ("workflow_run", {**workflow_run(), "action": "requested"}),
        ("push", {"ref": "refs/heads/main", "repository": REPO}),
        ("check_suite", {"action": "completed", "check_suite": {}, "repository": REPO}),
        ("ping", {"zen": "Keep it logically awesome."}),
    ],
)
def test_other_deliveries_fire_nothing(event: str, payload: dict[str, Any]) -> None:
    assert github.parse(event, payload) is None


def test_what_a_pull_request_firing_carries() -> None:
    firing = parsed("pull_request", pull_request("opened"))
    assert firing.branches == ("openinspect/abc", "main")
    assert (firing.labels, firing.author, firing.number) == (("Bug",), "Alice", 12)
    assert firing.url == "https://github.com/acme/widgets/pull/12"
    assert firing.origin_ref == "github:acme/widgets#12"
    assert firing.check is None
    # Only what was read, not the whole payload (no installation, no mergeable).
    assert "installation" not in firing.data and "mergeable" not in firing.data["pull_request"]
    assert firing.data["pull_request"]["body"] == "It is faster."


def test_a_comment_on_an_issue_has_no_branch_and_its_writer_is_the_author() -> None:
    firing = parsed("issue_comment", issue_comment(on_pull=False))
    assert (firing.branches, firing.labels, firing.author) == ((), ("triage",), "carol")
    assert firing.title.startswith("New comment on issue #5")
    on_pull = parsed("issue_comment", issue_comment(on_pull=True))
    assert on_pull.title.startswith("New comment on pull request #5")


def test_a_failed_check_names_the_check_its_pull_requests_and_its_job() -> None:
    firing = parsed("check_run", check_run("timed_out"))
    assert firing.pulls == (12,) and firing.number == 12
    assert (firing.head_branch, firing.head_sha) == ("openinspect/abc", SHA)
    check = firing.check
    assert check is not None
    assert (check.name, check.conclusion, check.check_run_id) == ("tests (3.12)", "timed_out", 4242)
    assert check.job_id == 4242  # a GitHub Actions check run is its job
    assert check.output is not None and check.output.summary == "test_speed failed"
    assert check.url == "https://github.com/acme/widgets/runs/4242"
    other = parsed("check_run", check_run(app="circleci"))
    assert other.check is not None and other.check.job_id is None


def test_a_check_without_a_suite_branch_takes_its_pull_requests_head() -> None:
    payload = check_run()
    del payload["check_run"]["check_suite"]
    assert parsed("check_run", payload).head_branch == "openinspect/abc"
    payload["check_run"]["pull_requests"] = []  # e.g. a fork's branch: GitHub lists none
    firing = parsed("check_run", payload)
    assert (firing.head_branch, firing.number, firing.pulls) == (None, None, ())


def test_a_failed_workflow_run() -> None:
    firing = parsed("workflow_run", workflow_run())
    assert (firing.author, firing.pulls, firing.head_branch) == ("alice", (12,), "openinspect/abc")
    assert firing.check is not None
    assert (firing.check.workflow_run_id, firing.check.attempt) == (77, 2)
    assert firing.check.name == "CI" and firing.check.job_id is None


def test_strings_and_lists_are_capped() -> None:
    huge = "x" * 1_000_000
    payload = pull_request(
        title=huge,
        body=huge,
        labels=[{"name": f"l{n}" + huge} for n in range(500)],
    )
    payload["pull_request"]["head"]["ref"] = huge
    payload["repository"] = {**REPO, "description": huge}
    firing = parsed("pull_request", payload)
    pull = firing.data["pull_request"]
    assert len(pull["title"]) == github.TITLE_MAX
    assert len(pull["body"]) == github.TEXT_MAX
    assert len(pull["labels"]) == github.LIST_MAX
    assert all(len(label["name"]) == github.SHORT_MAX for label in pull["labels"])
    assert firing.head_branch is not None and len(firing.head_branch) == github.SHORT_MAX
    assert "description" not in firing.data["repository"]
    run = check_run()
    run["check_run"]["output"] = {"title": huge, "summary": huge, "text": huge}
    output = parsed("check_run", run).data["check_run"]["output"]
    assert [len(output[k]) for k in ("title", "summary", "text")] == [
        github.TITLE_MAX,
        github.TEXT_MAX,
        github.TEXT_MAX,
    ]


@pytest.mark.parametrize(
    ("event", "payload", "where"),
    [
        ("pull_request", {"action": "opened", "repository": REPO}, "pull_request"),
        ("pull_request", {**pull_request(), "repository": {"name": "w"}}, "repository.full_name"),
        ("pull_request", pull_request(number="twelve"), "pull_request.number"),
        ("issue_comment", {**issue_comment(), "comment": {"body": "hi"}}, "comment.id"),
        ("check_run", {**check_run(), "check_run": {"id": 1}}, "check_run.head_sha"),
        ("workflow_run", {**workflow_run(), "workflow_run": []}, "workflow_run"),
    ],
)
def test_an_acted_on_event_in_the_wrong_shape_is_refused(
    event: str, payload: dict[str, Any], where: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        github.parse(event, payload)
    assert where in refused.value.message and event in refused.value.message


def trigger(**fields: Any) -> GithubTrigger:
    return GithubTrigger(events=fields.pop("events", ["pull_request.opened"]), **fields)


@pytest.mark.parametrize(
    ("filters", "fires"),
    [
        ({}, True),
        ({"events": ["pull_request.closed"]}, False),
        ({"events": ["pull_request.closed", "pull_request.opened"]}, True),
        ({"branches": ["main"]}, True),  # the base branch
        ({"branches": ["openinspect/*"]}, True),  # the head branch, by glob
        ({"branches": ["openinspect/abc"]}, True),
        ({"branches": ["Main"]}, False),  # branches are case-sensitive
        ({"branches": ["release/*", "dev"]}, False),
        ({"branches": ["mai"]}, False),  # exact, not a prefix
        ({"labels": ["bug"]}, True),  # labels are not
        ({"labels": ["wontfix", "BUG"]}, True),
        ({"labels": ["wontfix"]}, False),
        ({"authors": ["alice"]}, True),
        ({"authors": ["bob", "ALICE"]}, True),
        ({"authors": ["bob"]}, False),
        ({"branches": ["main"], "labels": ["bug"], "authors": ["alice"]}, True),
        ({"branches": ["main"], "labels": ["bug"], "authors": ["bob"]}, False),
    ],
)
def test_filters_on_a_pull_request(filters: dict[str, Any], fires: bool) -> None:
    firing = parsed("pull_request", pull_request("opened"))
    why = github.refusal(trigger(**filters), firing)
    assert (why is None) is fires, why


@pytest.mark.parametrize(
    ("event", "payload", "filters", "fires"),
    [
        ("issue_comment", issue_comment(), {"events": ["issue_comment"]}, True),
        (
            "issue_comment",
            issue_comment(),
            {"events": ["issue_comment"], "authors": ["carol"]},
            True,
        ),
        (
            "issue_comment",
            issue_comment(),
            {"events": ["issue_comment"], "authors": ["bob"]},
            False,
        ),
        (
            "issue_comment",
            issue_comment(),
            {"events": ["issue_comment"], "labels": ["triage"]},
            True,
        ),
        ("issue_comment", issue_comment(), {"events": ["issue_comment"], "branches": ["*"]}, False),
        ("check_run", check_run(), {"events": ["check_failed"]}, True),
        (
            "check_run",
            check_run(),
            {"events": ["check_failed"], "branches": ["openinspect/*"]},
            True,
        ),
        ("check_run", check_run(), {"events": ["check_failed"], "branches": ["main"]}, False),
        ("check_run", check_run(), {"events": ["check_failed"], "labels": ["bug"]}, False),
        ("check_run", check_run(), {"events": ["check_failed"], "authors": ["alice"]}, False),
        ("workflow_run", workflow_run(), {"events": ["check_failed"], "authors": ["alice"]}, True),
        ("workflow_run", workflow_run(), {"events": ["pull_request.opened"]}, False),
    ],
)
def test_filters_on_comments_and_checks(
    event: str, payload: dict[str, Any], filters: dict[str, Any], fires: bool
) -> None:
    why = github.refusal(trigger(**filters), parsed(event, payload))
    assert (why is None) is fires, why


def test_a_refusal_says_why() -> None:
    firing = parsed("pull_request", pull_request("opened"))
    assert "pull_request.opened is not one of its events" in (
        github.refusal(trigger(events=["check_failed"]), firing) or ""
    )
    assert "match none of release/*" in (
        github.refusal(trigger(branches=["release/*"]), firing) or ""
    )
    assert "none of the labels wontfix" in (
        github.refusal(trigger(labels=["wontfix"]), firing) or ""
    )
    assert "(Alice) is not one of the authors" in (
        github.refusal(trigger(authors=["bob"]), firing) or ""
    )
