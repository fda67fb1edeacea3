"""GitHub events as automation firings: parse, filter, key. Pure: no I/O.

``parse(event, payload) -> GithubFiring | None`` reads the deliveries we act on (the
``X-GitHub-Event`` header, the JSON body) into one typed firing, or None for anything else:

=================================  ===========================  =================================
delivery                           trigger event                key (per automation)
=================================  ===========================  =================================
``pull_request`` opened,           ``pull_request.<action>``    ``pr:<n>:<action>:<head sha>``
synchronize, closed
``issue_comment`` created          ``issue_comment``            ``comment:<comment id>``
(on an issue or a pull request)
``check_run`` completed, failing   ``check_failed``             ``check:<check run id>``
``workflow_run`` completed,        ``check_failed``             ``workflow:<run id>:<attempt>``
failing
=================================  ===========================  =================================

A check run fails with :data:`CHECK_FAILURES` (``failure``, ``timed_out``, ``action_required``,
``startup_failure``), a workflow run with :data:`WORKFLOW_FAILURES` (``failure``,
``timed_out``, ``startup_failure``); ``success``, ``neutral``, ``cancelled``, ``skipped`` and
``stale`` fire nothing.

The payload models read only the fields used here, ignore the rest (GitHub adds fields), and cut
every string to a cap (a title to 256 characters, a body or a check's output to 8,000…), so a
large or hostile payload costs at most a bounded amount; a payload missing what an acted-on
event needs is ``InvalidInput`` (422).

``refusal(trigger, firing) -> str | None`` applies a :class:`GithubTrigger`'s filters, each an
"any of" list where empty lets everything through:

- **events**: the firing's kind must be listed.
- **branches** (``fnmatch`` globs, case-sensitive, so ``main`` is exact and ``release/*`` a
  glob): a pull request matches on its head or its base branch, a check on its head branch. An
  issue comment names no branch, so it never passes a branch filter.
- **labels** (case-insensitive): the pull request's or issue's labels. Check payloads carry no
  labels, so they never pass a label filter.
- **authors** (GitHub logins, case-insensitive): who opened the pull request, who wrote the
  comment, who triggered the workflow run. A check run names no author, so it never passes an
  author filter.

The repo is matched by the caller (``automations.github_dispatch``): GitHub's
``repository.full_name`` against the automation's repo resolved as sessions resolve it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from openinspect.domain.automations import GithubEvent, GithubTrigger
from openinspect.errors import InvalidInput

SHORT_MAX = 255
"""Logins, branch and label names, check names, shas, conclusions."""
TITLE_MAX = 256
URL_MAX = 2_000
TEXT_MAX = 8_000
"""A pull request's or comment's body, a check's output summary or text."""
LIST_MAX = 50
"""Labels and pull requests read from one payload."""
PR_ACTIONS = frozenset({"opened", "synchronize", "closed"})
CHECK_FAILURES = frozenset({"failure", "timed_out", "action_required", "startup_failure"})
WORKFLOW_FAILURES = frozenset({"failure", "timed_out", "startup_failure"})
ACTIONS_APP = "github-actions"
"""The app slug of GitHub Actions' check runs, whose id is also their job's id."""
EVENTS = frozenset({"pull_request", "issue_comment", "check_run", "workflow_run"})
"""``X-GitHub-Event`` values that may fire automations."""


def _cut(limit: int) -> Callable[[Any], Any]:
    def cut(value: Any) -> Any:
        return value[:limit] if isinstance(value, str) else value

    return cut


def _first(limit: int) -> Callable[[Any], Any]:
    def first(value: Any) -> Any:
        return value[:limit] if isinstance(value, list) else value

    return first


Short = Annotated[str, BeforeValidator(_cut(SHORT_MAX))]
Title = Annotated[str, BeforeValidator(_cut(TITLE_MAX))]
Url = Annotated[str, BeforeValidator(_cut(URL_MAX))]
Text = Annotated[str, BeforeValidator(_cut(TEXT_MAX))]


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Account(_Part):
    login: Short


class Label(_Part):
    name: Short


Labels = Annotated[list[Label], BeforeValidator(_first(LIST_MAX))]


class Repository(_Part):
    full_name: Short


class Ref(_Part):
    ref: Short
    sha: Short | None = None


class Pull(_Part):
    number: int
    title: Title = ""
    body: Text | None = None
    html_url: Url | None = None
    state: Short | None = None
    draft: bool | None = None
    merged: bool | None = None
    user: Account | None = None
    head: Ref
    base: Ref
    labels: Labels = Field(default_factory=list)


class PullRequestEvent(_Part):
    action: Short
    pull_request: Pull
    repository: Repository
    sender: Account | None = None


class Issue(_Part):
    number: int
    title: Title = ""
    html_url: Url | None = None
    user: Account | None = None
    labels: Labels = Field(default_factory=list)
    pull_request: dict[str, Any] | None = None
    """Present when the issue is a pull request (GitHub puts PR comments on issues)."""


class Comment(_Part):
    id: int
    body: Text = ""
    html_url: Url | None = None
    user: Account | None = None


class IssueCommentEvent(_Part):
    action: Short
    issue: Issue
    comment: Comment
    repository: Repository
    sender: Account | None = None


class CheckPull(_Part):
    """A pull request as check payloads list them (number, head, base; no title or author)."""

    number: int
    head: Ref | None = None
    base: Ref | None = None


CheckPulls = Annotated[list[CheckPull], BeforeValidator(_first(LIST_MAX))]


class CheckOutput(_Part):
    title: Title | None = None
    summary: Text | None = None
    text: Text | None = None


class CheckSuite(_Part):
    id: int | None = None
    head_branch: Short | None = None


class App(_Part):
    slug: Short | None = None


class CheckRun(_Part):
    id: int
    name: Short = ""
    head_sha: Short
    status: Short | None = None
    conclusion: Short | None = None
    html_url: Url | None = None
    details_url: Url | None = None
    output: CheckOutput | None = None
    check_suite: CheckSuite | None = None
    app: App | None = None
    pull_requests: CheckPulls = Field(default_factory=list)


class CheckRunEvent(_Part):
    action: Short
    check_run: CheckRun
    repository: Repository
    sender: Account | None = None


class WorkflowRun(_Part):
    id: int
    name: Short | None = None
    head_branch: Short | None = None
    head_sha: Short
    run_attempt: int = 1
    status: Short | None = None
    conclusion: Short | None = None
    html_url: Url | None = None
    event: Short | None = None
    actor: Account | None = None
    pull_requests: CheckPulls = Field(default_factory=list)


class WorkflowRunEvent(_Part):
    action: Short
    workflow_run: WorkflowRun
    repository: Repository
    sender: Account | None = None


@dataclass(frozen=True)
class FailedCheck:
    """What failed, for the agent and for fetching its log: a check run (``check_run_id``;
    ``job_id`` too when GitHub Actions ran it) or a workflow run (``workflow_run_id``)."""

    name: str
    conclusion: str
    url: str | None
    check_run_id: int | None = None
    job_id: int | None = None
    workflow_run_id: int | None = None
    attempt: int | None = None
    output: CheckOutput | None = None


@dataclass(frozen=True)
class GithubFiring:
    """One delivery we act on, normalised."""

    kind: GithubEvent
    repo: str
    """``owner/name`` as GitHub spells it (``repository.full_name``)."""
    key: str
    head_branch: str | None
    base_branch: str | None
    labels: tuple[str, ...] | None
    """None: the event carries no labels (checks)."""
    author: str | None
    number: int | None
    """The pull request (or issue) number, when there is one."""
    head_sha: str | None
    title: str
    """One line on what happened, for the agent (from the payload: untrusted)."""
    url: str | None
    data: dict[str, Any]
    """The parsed fields (capped), the payload the agent sees and the run's digest is of."""
    check: FailedCheck | None = None
    pulls: tuple[int, ...] = ()
    """The pull requests a check names (numbers)."""

    @property
    def branches(self) -> tuple[str, ...]:
        return tuple(b for b in (self.head_branch, self.base_branch) if b)

    @property
    def origin_ref(self) -> str:
        """What a session it starts records as its origin: ``github:<repo>#<n>`` or the repo."""
        return f"github:{self.repo}#{self.number}" if self.number else f"github:{self.repo}"


def parse(event: str, payload: Mapping[str, Any]) -> GithubFiring | None:
    """The firing ``event`` (``X-GitHub-Event``) with ``payload`` makes, or None when it is
    not one we act on. ``InvalidInput`` when an acted-on event lacks what it needs."""
    if event not in EVENTS:
        return None
    action = payload.get("action")
    try:
        if event == "pull_request":
            return (
                _pull_request(PullRequestEvent.model_validate(payload))
                if action in PR_ACTIONS
                else None
            )
        if event == "issue_comment":
            return (
                _comment(IssueCommentEvent.model_validate(payload)) if action == "created" else None
            )
        if action != "completed":
            return None
        if event == "check_run":
            return _check_run(CheckRunEvent.model_validate(payload))
        return _workflow_run(WorkflowRunEvent.model_validate(payload))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(the body)"
        raise InvalidInput(
            f"A {event} delivery is not in GitHub's shape: {where}: {first['msg']}",
            hint="Send GitHub's own webhook payload",
        ) from None


def _labels(labels: list[Label]) -> tuple[str, ...]:
    return tuple(label.name for label in labels)


def _login(account: Account | None) -> str | None:
    return account.login if account is not None else None


def _pull_request(parsed: PullRequestEvent) -> GithubFiring:
    pull, action = parsed.pull_request, parsed.action
    kind: GithubEvent = f"pull_request.{action}"  # type: ignore[assignment]
    head_sha = pull.head.sha or ""
    return GithubFiring(
        kind=kind,
        repo=parsed.repository.full_name,
        key=f"pr:{pull.number}:{action}:{head_sha}",
        head_branch=pull.head.ref,
        base_branch=pull.base.ref,
        labels=_labels(pull.labels),
        author=_login(pull.user),
        number=pull.number,
        head_sha=pull.head.sha,
        title=f"Pull request #{pull.number} {action}: {pull.title}",
        url=pull.html_url,
        data=parsed.model_dump(mode="json", exclude_none=True),
    )


def _comment(parsed: IssueCommentEvent) -> GithubFiring:
    issue, comment = parsed.issue, parsed.comment
    what = "pull request" if issue.pull_request is not None else "issue"
    return GithubFiring(
        kind="issue_comment",
        repo=parsed.repository.full_name,
        key=f"comment:{comment.id}",
        head_branch=None,
        base_branch=None,
        labels=_labels(issue.labels),
        author=_login(comment.user),
        number=issue.number,
        head_sha=None,
        title=f"New comment on {what} #{issue.number}: {issue.title}",
        url=comment.html_url or issue.html_url,
        data=parsed.model_dump(mode="json", exclude_none=True),
    )


def _check_run(parsed: CheckRunEvent) -> GithubFiring | None:
    run = parsed.check_run
    if run.conclusion not in CHECK_FAILURES:
        return None
    pulls = tuple(p.number for p in run.pull_requests)
    head = run.check_suite.head_branch if run.check_suite else None
    if head is None:
        head = next((p.head.ref for p in run.pull_requests if p.head is not None), None)
    by_actions = run.app is not None and run.app.slug == ACTIONS_APP
    return GithubFiring(
        kind="check_failed",
        repo=parsed.repository.full_name,
        key=f"check:{run.id}",
        head_branch=head,
        base_branch=None,
        labels=None,
        author=None,
        number=pulls[0] if pulls else None,
        head_sha=run.head_sha,
        title=f"Check {run.name!r} ended {run.conclusion}",
        url=run.html_url or run.details_url,
        data=parsed.model_dump(mode="json", exclude_none=True),
        check=FailedCheck(
            name=run.name,
            conclusion=run.conclusion,
            url=run.html_url or run.details_url,
            check_run_id=run.id,
            job_id=run.id if by_actions else None,
            output=run.output,
        ),
        pulls=pulls,
    )


def _workflow_run(parsed: WorkflowRunEvent) -> GithubFiring | None:
    run = parsed.workflow_run
    if run.conclusion not in WORKFLOW_FAILURES:
        return None
    pulls = tuple(p.number for p in run.pull_requests)
    name = run.name or f"workflow run {run.id}"
    return GithubFiring(
        kind="check_failed",
        repo=parsed.repository.full_name,
        key=f"workflow:{run.id}:{run.run_attempt}",
        head_branch=run.head_branch,
        base_branch=None,
        labels=None,
        author=_login(run.actor),
        number=pulls[0] if pulls else None,
        head_sha=run.head_sha,
        title=f"Workflow {name!r} ended {run.conclusion}",
        url=run.html_url,
        data=parsed.model_dump(mode="json", exclude_none=True),
        check=FailedCheck(
            name=name,
            conclusion=run.conclusion,
            url=run.html_url,
            workflow_run_id=run.id,
            attempt=run.run_attempt,
        ),
        pulls=pulls,
    )


def refusal(trigger: GithubTrigger, firing: GithubFiring) -> str | None:
    """Why ``trigger`` does not fire for ``firing`` (a sentence), or None when it does."""
    if firing.kind not in trigger.events:
        return f"{firing.kind} is not one of its events ({', '.join(trigger.events)})"
    if trigger.branches and not any(
        fnmatch.fnmatchcase(branch, pattern)
        for branch in firing.branches
        for pattern in trigger.branches
    ):
        named = ", ".join(firing.branches) or "no branch"
        return f"the event's branches ({named}) match none of {', '.join(trigger.branches)}"
    if trigger.labels:
        wanted = {label.casefold() for label in trigger.labels}
        have = {label.casefold() for label in firing.labels or ()}
        if not wanted & have:
            return f"the event has none of the labels {', '.join(trigger.labels)}"
    if trigger.authors:
        wanted = {login.casefold() for login in trigger.authors}
        if firing.author is None or firing.author.casefold() not in wanted:
            return f"its author ({firing.author or 'unknown'}) is not one of the authors"
    return None
