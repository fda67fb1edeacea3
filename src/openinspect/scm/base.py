"""The SCM seam: small types every caller shares, and the contract of a provider.

GitHub (``scm.github.GitHub``) is the first and only provider for now. The types here are plain
frozen dataclasses with no GitHub-client objects in them, so ``sessions/``, ``api/`` and the git
proxy can hold and compare them without importing githubkit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol
from urllib.parse import urlsplit

PullState = Literal["open", "closed", "merged"]
ReviewEvent = Literal["APPROVE", "REQUEST_CHANGES", "COMMENT"]
DevicePollStatus = Literal["ok", "pending", "slow_down", "expired", "denied"]

# GitHub's own rules: owners are alphanumeric with single hyphens; repo names add . and _.
_OWNER_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_SCP_RE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")


@dataclass(frozen=True, order=True)
class RepoRef:
    """A repository on the SCM host, by owner and name (``octo-org/widgets``)."""

    owner: str
    name: str

    @property
    def slug(self) -> str:
        """``owner/name``, GitHub's ``full_name``."""
        return f"{self.owner}/{self.name}"

    @classmethod
    def parse(cls, slug: str) -> RepoRef:
        """``RepoRef.parse("owner/name")``; raises ValueError naming the expected shape."""
        owner, sep, name = slug.strip().partition("/")
        name = name.removesuffix(".git")
        if not sep or not _OWNER_RE.match(owner) or not _NAME_RE.match(name) or name in {".", ".."}:
            raise ValueError(f"expected a repository as 'owner/name', got {slug!r}")
        return cls(owner, name)

    def __str__(self) -> str:
        return self.slug


def _host_of(web_url: str) -> str:
    parts = urlsplit(web_url if "//" in web_url else f"https://{web_url}")
    return (parts.hostname or "").lower()


def _hostport_of(web_url: str) -> str:
    parts = urlsplit(web_url if "//" in web_url else f"https://{web_url}")
    return (parts.netloc.rpartition("@")[2]).lower()


def parse_repo_url(url: str, web_url: str) -> RepoRef | None:
    """The repository a clone URL points at, when it is on the ``web_url`` host.

    Accepts ``https://host/owner/name``, ``https://host/owner/name.git`` (with or without a
    trailing slash, with or without credentials in the URL) and ``git@host:owner/name.git``. Returns
    None for other hosts, local paths and anything else that is not a repository on that host.
    For a GitHub Enterprise Server under a path prefix, the prefix must match too.
    """
    url = url.strip()
    web = urlsplit(web_url if "//" in web_url else f"https://{web_url}")
    prefix = web.path.rstrip("/")
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ssh", "git"):
            return None
        if parts.scheme in ("http", "https"):
            if parts.netloc.rpartition("@")[2].lower() != _hostport_of(web_url):
                return None
        elif (parts.hostname or "").lower() != _host_of(web_url):
            return None
        path = parts.path
        if parts.scheme in ("http", "https") and prefix:
            if not path.startswith(prefix + "/"):
                return None
            path = path[len(prefix) :]
    else:
        match = _SCP_RE.match(url)
        if match is None or match["host"].lower() != _host_of(web_url):
            return None
        path = "/" + match["path"]
    segments = [s for s in path.strip("/").split("/") if s]
    if len(segments) != 2:
        return None
    try:
        return RepoRef.parse("/".join(segments))
    except ValueError:
        return None


@dataclass(frozen=True)
class InstallationToken:
    """A GitHub App installation access token (about an hour long). Never log ``token``."""

    token: str = field(repr=False)
    expires_at: datetime

    def seconds_left(self, now: datetime | None = None) -> float:
        return (self.expires_at - (now or datetime.now(UTC))).total_seconds()


@dataclass(frozen=True)
class ScmUser:
    """The person behind a user token."""

    id: int
    login: str
    name: str | None = None
    email: str | None = None
    avatar_url: str | None = None


@dataclass(frozen=True)
class UserEmail:
    email: str
    verified: bool
    primary: bool


@dataclass(frozen=True)
class OAuthToken:
    """A user-to-server token from the OAuth web or device flow. ``expires_at`` is None for
    tokens that do not expire; ``refresh_token`` is set when GitHub issues expiring tokens."""

    access_token: str = field(repr=False)
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    scopes: tuple[str, ...] = ()
    expires_at: datetime | None = None
    refresh_token: str | None = field(default=None, repr=False)
    refresh_expires_at: datetime | None = None


@dataclass(frozen=True)
class DeviceCode:
    """What the device flow's first step returns: show ``user_code`` and ``verification_uri``
    to the person, then poll with ``device_code`` every ``interval_s``."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    interval_s: float
    expires_in_s: float


@dataclass(frozen=True)
class DevicePoll:
    """One poll of the device flow: ``status == "ok"`` with a token, or why there is none yet.

    ``pending``: keep polling; ``slow_down``: keep polling, every ``interval_s`` from now on;
    ``expired``: start again; ``denied``: the person refused.
    """

    status: DevicePollStatus
    token: OAuthToken | None = None
    interval_s: float | None = None


@dataclass(frozen=True)
class PullRequest:
    """A pull request as callers need it; ``url`` is the web page (GitHub's ``html_url``)."""

    number: int
    url: str
    state: PullState
    draft: bool
    title: str
    body: str
    head: str
    base: str
    author_login: str | None
    head_sha: str = ""
    head_repo: str | None = None
    """``owner/name`` of the repository the head branch lives in (a fork's, for a pull request
    from a fork; None when that repository was deleted)."""


@dataclass(frozen=True)
class PullFile:
    """One file a pull request changes (``GET …/pulls/{n}/files``); ``patch`` is GitHub's
    unified diff of it, None for a binary or too large a file."""

    filename: str
    status: str
    additions: int
    deletions: int
    patch: str | None = None


@dataclass(frozen=True)
class Review:
    """A submitted review as GitHub has it now (``state`` upper-case: ``APPROVED``,
    ``CHANGES_REQUESTED``, ``COMMENTED``, ``DISMISSED``, ``PENDING``)."""

    id: int
    state: str
    body: str
    user_login: str | None
    user_type: str | None
    commit_id: str | None
    url: str


@dataclass(frozen=True)
class PostedReviewComment:
    """A line comment of a review, as posted (``line`` None: on an outdated diff)."""

    id: int
    path: str
    line: int | None
    side: str | None
    body: str
    diff_hunk: str
    user_login: str | None


@dataclass(frozen=True)
class ReviewComment:
    """A line comment in a review: ``line`` of ``path`` on the ``side`` of the diff."""

    path: str
    body: str
    line: int
    side: Literal["LEFT", "RIGHT"] = "RIGHT"
    start_line: int | None = None
    """The first line of a multi-line comment (same side, same hunk as ``line``)."""


@dataclass(frozen=True)
class Comment:
    """A review or comment that was posted."""

    id: int
    url: str


@dataclass(frozen=True)
class CheckRun:
    """A check run as GitHub reports it (``GET …/check-runs/{id}``); ``app`` is the slug of
    the App that made it (``github-actions`` for Actions, whose check run ids are job ids)."""

    id: int
    name: str
    conclusion: str | None
    url: str | None
    title: str | None
    summary: str | None
    text: str | None
    app: str | None


@dataclass(frozen=True)
class WorkflowJob:
    """One job of a GitHub Actions workflow run."""

    id: int
    name: str
    conclusion: str | None
    url: str | None


class ScmProvider(Protocol):
    """What the control plane needs from an SCM host.

    Contract for every async method: it either returns or raises an ``ScmError`` subclass, with
    the host's own message in ours and the cause chained (``raise … from exc``):
    ``ScmAuthFailed`` (our App key, an installation or a user token was refused),
    ``ScmNotFound`` (no such repo/PR, or not visible to that identity), ``ScmRateLimited``
    (the message says when the limit resets), ``ScmUnavailable`` (connection error, timeout,
    5xx) or plain ``ScmError`` (anything else, e.g. a 422 validation failure). Features that are
    not set up raise ``NotConfigured`` naming the settings. One request is bounded by the
    provider's request timeout; nothing retries for longer than a couple of seconds. Tokens are
    never logged.
    """

    async def installation_token(self, repo: RepoRef) -> InstallationToken:
        """A token that may fetch and push ``repo`` (and open PRs on it), cached and refreshed
        before it expires. Concurrent callers share one refresh."""
        ...

    async def installation_repos(self) -> list[RepoRef]:
        """Every repository the App is installed on."""
        ...

    async def get_user(self, user_token: str) -> ScmUser:
        """Who a user token belongs to."""
        ...

    async def user_emails(self, user_token: str) -> list[UserEmail]:
        """The user's email addresses with their verified and primary flags."""
        ...

    async def user_orgs(self, user_token: str) -> list[str]:
        """Logins of the organisations the user belongs to (that the token may see)."""
        ...

    async def user_can_read(self, user_token: str, repo: RepoRef) -> bool:
        """Whether the user may read ``repo`` through their own identity. False for a repo that
        does not exist or is hidden from them; raises ``ScmAuthFailed`` for a dead token."""
        ...

    async def find_pull(
        self, repo: RepoRef, branch: str, token: str | None = None
    ) -> PullRequest | None:
        """The PR whose head is ``branch`` of ``repo``: the open one, else the newest closed."""
        ...

    async def create_pull(
        self,
        repo: RepoRef,
        *,
        head: str,
        base: str,
        title: str,
        body: str,
        draft: bool = False,
        user_token: str | None = None,
    ) -> PullRequest:
        """Open a PR as the user (``user_token``) or, without one, as the App."""
        ...

    async def update_pull(
        self,
        repo: RepoRef,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        user_token: str | None = None,
    ) -> PullRequest:
        """Change a PR's title and/or body."""
        ...

    async def get_pull(self, repo: RepoRef, number: int) -> PullRequest:
        """One PR by number."""
        ...

    async def create_review(
        self,
        repo: RepoRef,
        number: int,
        body: str,
        event: ReviewEvent = "COMMENT",
        comments: Sequence[ReviewComment] = (),
    ) -> Comment:
        """Post a review (as the App) with optional line comments."""
        ...

    async def create_issue_comment(self, repo: RepoRef, number: int, body: str) -> Comment:
        """Post a comment on an issue or PR conversation (as the App)."""
        ...

    async def aclose(self) -> None:
        """Release connections. Safe to call twice."""
        ...
