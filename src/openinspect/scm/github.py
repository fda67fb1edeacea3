"""GitHub (and GitHub Enterprise Server) through githubkit: App installation tokens, users,
repository access checks, pull requests, reviews and comments, and OAuth sign-in.

Three identities talk to GitHub:

- **the App** (a JWT signed with its private key): finds the installation of a repository and
  mints installation tokens;
- **an installation token** (``ghs_…``, about an hour, scoped here to one repository with
  contents and pull-request write): git fetch/push through the proxy, PRs without a user token,
  reviews and comments;
- **a user token** (from OAuth sign-in): who the person is, whether *they* may read a repo, and
  PRs opened in their name.

Every failure leaves this module as an ``ScmError`` subclass (see ``scm.github_errors``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import githubkit
import httpx
from githubkit import TokenAuthStrategy, UnauthAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.config import get_config
from githubkit.retry import RetryServerError
from githubkit.utils import UNSET
from githubkit_schemas.latest.models import DiffEntry as GhDiffEntry
from githubkit_schemas.latest.models import IssueComment as GhIssueComment
from githubkit_schemas.latest.models import OrganizationSimple
from githubkit_schemas.latest.models import PullRequest as GhPull
from githubkit_schemas.latest.models import PullRequestReview as GhPullReview
from githubkit_schemas.latest.models import PullRequestReviewComment as GhPullComment
from githubkit_schemas.latest.models import PullRequestSimple as GhPullSimple
from githubkit_schemas.latest.models import ReviewComment as GhReviewComment

from openinspect.errors import (
    ScmAuthFailed,
    ScmError,
    ScmNotFound,
    ScmRateLimited,
    ScmUnavailable,
)
from openinspect.scm.base import (
    CheckRun,
    Comment,
    DeviceCode,
    DevicePoll,
    InstallationToken,
    OAuthToken,
    PostedReviewComment,
    PullFile,
    PullRequest,
    PullState,
    RepoRef,
    Review,
    ReviewComment,
    ReviewEvent,
    ScmUser,
    UserEmail,
    WorkflowJob,
)
from openinspect.scm.github_app import GitHubApp, github_errors
from openinspect.scm.github_oauth import DEFAULT_OAUTH_SCOPES, GitHubOAuth
from openinspect.settings import GitHubSettings

USER_AGENT = "openinspect"
PER_PAGE = 100

UserClient = githubkit.GitHub[TokenAuthStrategy]
T = TypeVar("T")


class _SharedTransport(httpx.AsyncBaseTransport):
    """githubkit opens and closes an httpx client per request; this keeps the connection pool
    alive across them. The owner closes the real transport."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        return None


def _posted_comment(item: GhReviewComment | GhPullComment) -> PostedReviewComment:
    return PostedReviewComment(
        id=item.id,
        path=item.path,
        line=item.line or None,
        side=item.side or None,
        body=item.body,
        diff_hunk=item.diff_hunk,
        user_login=item.user.login if item.user else None,
    )


def _pull(data: GhPull | GhPullSimple) -> PullRequest:
    state: PullState = (
        "merged" if data.merged_at else ("closed" if data.state == "closed" else "open")
    )
    return PullRequest(
        number=data.number,
        url=data.html_url,
        state=state,
        draft=data.draft is True,
        title=data.title,
        body=data.body or "",
        head=data.head.ref,
        base=data.base.ref,
        author_login=data.user.login if data.user else None,
        head_sha=data.head.sha,
        head_repo=data.head.repo.full_name if data.head.repo else None,
    )


class GitHub:
    """The GitHub provider (``scm.base.ScmProvider``), built from ``GitHubSettings``.

    ``transport`` replaces the HTTP transport (tests rarely need it: point ``web_url`` at
    ``openinspect.testing.github.FakeGitHub`` instead). ``retry_server_errors`` retries a 5xx
    answer once after a second. Use ``async with GitHub(settings) as gh`` or call ``aclose()``.
    """

    def __init__(
        self,
        settings: GitHubSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_server_errors: bool = True,
    ) -> None:
        self.settings = settings
        self.api_url = settings.resolved_api_url
        self.web_url = settings.web_url.rstrip("/")
        self._transport = transport or httpx.AsyncHTTPTransport()
        self._owns_transport = transport is None
        shared = _SharedTransport(self._transport)
        self._config = get_config(
            base_url=self.api_url,
            user_agent=USER_AGENT,
            timeout=settings.request_timeout_s,
            async_transport=shared,
            # Own cache: githubkit's default is process-wide and keys the App JWT by app id only.
            cache_strategy=MemCacheStrategy(),
            http_cache=False,
            auto_retry=RetryServerError(max_retry=1) if retry_server_errors else False,
        )
        self._anon: githubkit.GitHub[UnauthAuthStrategy] = githubkit.GitHub(config=self._config)
        self._app = GitHubApp(settings, self._config)
        self._oauth = GitHubOAuth(settings, transport=shared)

    # ------------------------------------------------------------------ plumbing

    def _errors(self, doing: str) -> AbstractAsyncContextManager[None]:
        return github_errors(doing, self.api_url)

    def _as(self, token: str) -> UserClient:
        return self._anon.with_auth(TokenAuthStrategy(token))

    async def _installation_client(self, repo: RepoRef) -> UserClient:
        return self._as((await self.installation_token(repo)).token)

    # ------------------------------------------------------------------ the App

    async def installation_token(self, repo: RepoRef) -> InstallationToken:
        """A token for git fetch/push and PRs on ``repo`` only; cached per (installation, repo)
        and replaced once less than ``token_refresh_margin_s`` remains. Concurrent callers
        share one mint."""
        return await self._app.repo_token(repo)

    async def app_slug(self) -> str:
        """The App's slug (``GET /app``): its bot user is ``<slug>[bot]``."""
        async with self._errors("reading the App"):
            data = (await self._app.client().rest.apps.async_get_authenticated()).parsed_data
        if data is None or not data.slug:
            raise ScmError("GitHub did not say the App's slug (GET /app)")
        return data.slug

    async def installation_repos(self) -> list[RepoRef]:
        """Every repository of the configured installation, or of all the App's installations."""
        repos: set[RepoRef] = set()
        for installation_id in await self._app.installation_ids():
            token = await self._app.installation_token(installation_id)
            gh = self._as(token.token)
            async with self._errors(f"listing the repositories of installation {installation_id}"):
                async for item in gh.rest.paginate(
                    gh.rest.apps.async_list_repos_accessible_to_installation,
                    map_func=lambda r: r.parsed_data.repositories,
                    per_page=PER_PAGE,
                ):
                    repos.add(RepoRef.parse(item.full_name))
        return sorted(repos)

    # ------------------------------------------------------------------ users

    async def get_user(self, user_token: str) -> ScmUser:
        """Who ``user_token`` belongs to (``GET /user``)."""
        gh = self._as(user_token)
        async with self._errors("getting the signed-in user"):
            data = (await gh.rest.users.async_get_authenticated()).parsed_data
            return ScmUser(
                id=data.id,
                login=data.login,
                name=data.name,
                email=data.email,
                avatar_url=data.avatar_url or None,
            )

    async def user_emails(self, user_token: str) -> list[UserEmail]:
        """The user's addresses (needs the ``user:email`` scope or the Email permission)."""
        gh = self._as(user_token)
        async with self._errors("listing the user's email addresses"):
            return [
                UserEmail(email=e.email, verified=e.verified, primary=e.primary)
                async for e in gh.rest.paginate(
                    gh.rest.users.async_list_emails_for_authenticated_user, per_page=PER_PAGE
                )
            ]

    async def user_orgs(self, user_token: str) -> list[str]:
        """Logins of the user's organisations (needs ``read:org`` / Members read)."""
        gh = self._as(user_token)
        logins: list[str] = []
        org: OrganizationSimple
        async with self._errors("listing the user's organisations"):
            async for org in gh.rest.paginate(
                gh.rest.orgs.async_list_for_authenticated_user, per_page=PER_PAGE
            ):
                logins.append(org.login)
        return logins

    async def user_can_read(self, user_token: str, repo: RepoRef) -> bool:
        """Whether the user may read ``repo`` with their own identity (not the App's).

        False when GitHub says 404 or 403; ``ScmAuthFailed`` when the token itself is refused
        (401), so callers can ask the person to sign in again.
        """
        gh = self._as(user_token)
        try:
            async with self._errors(f"checking the user's access to {repo}"):
                data = (await gh.rest.repos.async_get(repo.owner, repo.name)).parsed_data
                permissions = data.permissions or None
        except ScmNotFound:
            return False
        except (ScmAuthFailed, ScmRateLimited, ScmUnavailable):
            raise
        except ScmError as exc:
            if exc.details.get("github_status") == 403:
                return False
            raise
        return bool(permissions is not None and permissions.pull)

    # ------------------------------------------------------------------ pull requests

    async def find_pull(
        self, repo: RepoRef, branch: str, token: str | None = None
    ) -> PullRequest | None:
        """The PR from ``branch`` of ``repo``: the open one, else the newest closed or merged
        one, else None. Read with ``token`` if given, else as the App."""
        gh = self._as(token) if token else await self._installation_client(repo)
        async with self._errors(f"looking for the PR of {repo} branch {branch}"):
            response = await gh.rest.pulls.async_list(
                repo.owner,
                repo.name,
                head=f"{repo.owner}:{branch}",
                state="all",
                sort="created",
                direction="desc",
                per_page=PER_PAGE,
            )
            found = cast(list[GhPullSimple], response.parsed_data)
            pulls = [_pull(p) for p in found if p.head.ref == branch]
        for pull in pulls:
            if pull.state == "open":
                return pull
        return pulls[0] if pulls else None

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
        """Open a PR from ``head`` into ``base`` as the user (``user_token``) or as the App."""
        gh = self._as(user_token) if user_token else await self._installation_client(repo)
        async with self._errors(f"opening a PR on {repo} from {head} into {base}"):
            response = await gh.rest.pulls.async_create(
                repo.owner, repo.name, head=head, base=base, title=title, body=body, draft=draft
            )
            return _pull(response.parsed_data)

    async def update_pull(
        self,
        repo: RepoRef,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        user_token: str | None = None,
    ) -> PullRequest:
        """Change the title and/or body of PR ``number`` (None leaves a field as it is)."""
        gh = self._as(user_token) if user_token else await self._installation_client(repo)
        async with self._errors(f"updating PR #{number} of {repo}"):
            response = await gh.rest.pulls.async_update(
                repo.owner,
                repo.name,
                number,
                title=UNSET if title is None else title,
                body=UNSET if body is None else body,
            )
            return _pull(response.parsed_data)

    async def get_pull(self, repo: RepoRef, number: int) -> PullRequest:
        """PR ``number`` of ``repo``, read as the App."""
        gh = await self._installation_client(repo)
        async with self._errors(f"getting PR #{number} of {repo}"):
            return _pull((await gh.rest.pulls.async_get(repo.owner, repo.name, number)).parsed_data)

    async def pull_files(self, repo: RepoRef, number: int, limit: int = 300) -> list[PullFile]:
        """The files PR ``number`` changes (at most ``limit``; GitHub lists 3,000 at most)."""
        gh = await self._installation_client(repo)
        items: list[GhDiffEntry] = await self._first(
            gh.rest.paginate(
                gh.rest.pulls.async_list_files,
                owner=repo.owner,
                repo=repo.name,
                pull_number=number,
                per_page=PER_PAGE,
            ),
            limit,
            f"listing the files of PR #{number} of {repo}",
        )
        return [
            PullFile(
                filename=item.filename,
                status=item.status,
                additions=item.additions,
                deletions=item.deletions,
                patch=item.patch or None,
            )
            for item in items
        ]

    async def _first(self, pages: AsyncIterator[T], limit: int, doing: str) -> list[T]:
        """The first ``limit`` items of a paginated listing."""
        found: list[T] = []
        async with self._errors(doing):
            async for item in pages:
                found.append(item)
                if len(found) >= limit:
                    break
        return found

    async def permission(self, repo: RepoRef, login: str) -> str:
        """What ``login`` may do on ``repo``, read as the App: ``admin``, ``maintain``,
        ``write``, ``triage``, ``read`` or ``none`` (also for a login GitHub does not know)."""
        gh = await self._installation_client(repo)
        try:
            async with self._errors(f"reading the permission of {login} on {repo}"):
                data = (
                    await gh.rest.repos.async_get_collaborator_permission_level(
                        repo.owner, repo.name, login
                    )
                ).parsed_data
        except ScmNotFound:
            return "none"
        role = (data.role_name or "").lower()
        return role if role in ("maintain", "triage") else data.permission.lower()

    async def get_review(self, repo: RepoRef, number: int, review_id: int) -> Review:
        """Review ``review_id`` of PR ``number``, read as the App."""
        gh = await self._installation_client(repo)
        async with self._errors(f"getting review {review_id} of PR #{number} of {repo}"):
            data = (
                await gh.rest.pulls.async_get_review(repo.owner, repo.name, number, review_id)
            ).parsed_data
        return Review(
            id=data.id,
            state=data.state.upper(),
            body=data.body or "",
            user_login=data.user.login if data.user else None,
            user_type=data.user.type if data.user else None,
            commit_id=data.commit_id or None,
            url=data.html_url,
        )

    async def review_comments(
        self, repo: RepoRef, number: int, review_id: int, limit: int = 100
    ) -> list[PostedReviewComment]:
        """The line comments of review ``review_id`` (at most ``limit``), read as the App."""
        gh = await self._installation_client(repo)
        items: list[GhReviewComment] = await self._first(
            gh.rest.paginate(
                gh.rest.pulls.async_list_comments_for_review,
                owner=repo.owner,
                repo=repo.name,
                pull_number=number,
                review_id=review_id,
                per_page=PER_PAGE,
            ),
            limit,
            f"listing the comments of review {review_id} of {repo}",
        )
        return [_posted_comment(item) for item in items]

    async def create_review(
        self,
        repo: RepoRef,
        number: int,
        body: str,
        event: ReviewEvent = "COMMENT",
        comments: Sequence[ReviewComment] = (),
        commit_id: str | None = None,
    ) -> Comment:
        """Review PR ``number`` as the App, with optional line comments, on ``commit_id`` (the
        head the comments were checked against) when given."""
        gh = await self._installation_client(repo)
        lines: list[dict[str, Any]] = []
        for c in comments:
            spot: dict[str, Any] = {"path": c.path, "body": c.body, "line": c.line, "side": c.side}
            if c.start_line is not None:
                spot |= {"start_line": c.start_line, "start_side": c.side}
            lines.append(spot)
        async with self._errors(f"reviewing PR #{number} of {repo}"):
            response = await gh.rest.pulls.async_create_review(
                repo.owner,
                repo.name,
                number,
                body=body,
                event=event,
                comments=cast(Any, lines),
                commit_id=commit_id if commit_id else UNSET,
            )
            review = response.parsed_data
            return Comment(id=review.id, url=review.html_url)

    async def reviews(
        self, repo: RepoRef, number: int, limit: int = 300
    ) -> list[tuple[Comment, str]]:
        """The reviews of PR ``number`` (oldest first, at most ``limit``) with their bodies,
        read as the App."""
        gh = await self._installation_client(repo)
        items: list[GhPullReview] = await self._first(
            gh.rest.paginate(
                gh.rest.pulls.async_list_reviews,
                owner=repo.owner,
                repo=repo.name,
                pull_number=number,
                per_page=PER_PAGE,
            ),
            limit,
            f"listing the reviews of PR #{number} of {repo}",
        )
        return [(Comment(id=item.id, url=item.html_url), item.body or "") for item in items]

    async def pull_review_comments(
        self, repo: RepoRef, number: int, limit: int = 300
    ) -> list[tuple[Comment, str]]:
        """The line comments (and replies) of PR ``number`` (oldest first, at most ``limit``)
        with their bodies, read as the App."""
        gh = await self._installation_client(repo)
        items: list[GhPullComment] = await self._first(
            gh.rest.paginate(
                gh.rest.pulls.async_list_review_comments,
                owner=repo.owner,
                repo=repo.name,
                pull_number=number,
                per_page=PER_PAGE,
            ),
            limit,
            f"listing the line comments of PR #{number} of {repo}",
        )
        return [(Comment(id=item.id, url=item.html_url), item.body) for item in items]

    async def get_review_comment(self, repo: RepoRef, comment_id: int) -> PostedReviewComment:
        """Line comment ``comment_id`` of ``repo`` (a thread's root, say), read as the App."""
        gh = await self._installation_client(repo)
        async with self._errors(f"getting line comment {comment_id} of {repo}"):
            response = await gh.rest.pulls.async_get_review_comment(
                repo.owner, repo.name, comment_id
            )
        return _posted_comment(response.parsed_data)

    async def reply_to_review_comment(
        self, repo: RepoRef, number: int, comment_id: int, body: str
    ) -> Comment:
        """Reply as the App in the review thread of line comment ``comment_id`` of PR
        ``number``."""
        gh = await self._installation_client(repo)
        async with self._errors(f"replying to comment {comment_id} of PR #{number} of {repo}"):
            response = await gh.rest.pulls.async_create_reply_for_review_comment(
                repo.owner, repo.name, number, comment_id, body=body
            )
            made = response.parsed_data
            return Comment(id=made.id, url=made.html_url)

    async def create_issue_comment(self, repo: RepoRef, number: int, body: str) -> Comment:
        """Comment on issue or PR ``number`` as the App."""
        gh = await self._installation_client(repo)
        async with self._errors(f"commenting on #{number} of {repo}"):
            response = await gh.rest.issues.async_create_comment(
                repo.owner, repo.name, number, body=body
            )
            comment = response.parsed_data
            return Comment(id=comment.id, url=comment.html_url)

    async def issue_comments(
        self, repo: RepoRef, number: int, limit: int = 300
    ) -> list[tuple[Comment, str]]:
        """The comments of issue or PR ``number`` (oldest first, at most ``limit``) with their
        bodies, read as the App."""
        gh = await self._installation_client(repo)
        items: list[GhIssueComment] = await self._first(
            gh.rest.paginate(
                gh.rest.issues.async_list_comments,
                owner=repo.owner,
                repo=repo.name,
                issue_number=number,
                per_page=PER_PAGE,
            ),
            limit,
            f"listing the comments of #{number} of {repo}",
        )
        return [(Comment(id=item.id, url=item.html_url), item.body or "") for item in items]

    async def add_reaction(self, repo: RepoRef, subject: str, object_id: int, content: str) -> int:
        """React with ``content`` (``eyes``…) as the App on ``subject`` ``object_id``: an
        ``issue`` (or PR) number, an ``issue_comment`` or a ``review_comment`` id. GitHub answers
        with the existing reaction when the App made it before; its id is returned."""
        gh = await self._installation_client(repo)
        reactions = gh.rest.reactions
        emoji = cast(Any, content)
        async with self._errors(f"reacting on {subject} {object_id} of {repo}"):
            if subject == "issue":
                made = await reactions.async_create_for_issue(
                    repo.owner, repo.name, object_id, content=emoji
                )
            elif subject == "issue_comment":
                made = await reactions.async_create_for_issue_comment(
                    repo.owner, repo.name, object_id, content=emoji
                )
            elif subject == "review_comment":
                made = await reactions.async_create_for_pull_request_review_comment(
                    repo.owner, repo.name, object_id, content=emoji
                )
            else:
                raise ValueError(f"no reactions on a {subject!r}")
            return made.parsed_data.id

    # ------------------------------------------------------------------ checks and CI logs

    async def _checks_client(self, repo: RepoRef) -> UserClient:
        """An installation token with every permission of the installation: reading checks
        and Actions logs needs ``checks: read`` and ``actions: read``, which the per-repository
        git token does not ask for (so an App without them still pushes)."""
        installation_id = await self._app.installation_id(repo)
        return self._as((await self._app.installation_token(installation_id)).token)

    async def get_check_run(self, repo: RepoRef, check_run_id: int) -> CheckRun:
        """Check run ``check_run_id`` of ``repo`` (its output: title, summary, text)."""
        gh = await self._checks_client(repo)
        async with self._errors(f"getting check run {check_run_id} of {repo}"):
            data = (await gh.rest.checks.async_get(repo.owner, repo.name, check_run_id)).parsed_data
            return CheckRun(
                id=data.id,
                name=data.name,
                conclusion=data.conclusion,
                url=data.html_url or data.details_url,
                title=data.output.title,
                summary=data.output.summary,
                text=data.output.text,
                app=data.app.slug if data.app and data.app.slug else None,
            )

    async def workflow_jobs(self, repo: RepoRef, run_id: int, attempt: int) -> list[WorkflowJob]:
        """The jobs of attempt ``attempt`` of workflow run ``run_id`` (the first 100)."""
        gh = await self._checks_client(repo)
        async with self._errors(f"listing the jobs of workflow run {run_id} of {repo}"):
            response = await gh.rest.actions.async_list_jobs_for_workflow_run_attempt(
                repo.owner, repo.name, run_id, attempt, per_page=PER_PAGE
            )
            return [
                WorkflowJob(id=j.id, name=j.name, conclusion=j.conclusion, url=j.html_url)
                for j in response.parsed_data.jobs
            ]

    async def job_log_tail(self, repo: RepoRef, job_id: int, max_bytes: int) -> str:
        """The last ``max_bytes`` of job ``job_id``'s log (GitHub answers with a redirect to
        a plain-text file, followed here). Asks for only the tail (``Range``) and, should the
        file be sent whole, keeps only the tail while reading it."""
        gh = await self._checks_client(repo)
        tail = bytearray()
        async with self._errors(f"getting the log of job {job_id} of {repo}"), gh:
            response = await gh.rest.actions.async_download_job_logs_for_workflow_run(
                repo.owner,
                repo.name,
                job_id,
                headers={"Range": f"bytes=-{max_bytes}"},
                stream=True,
            )
            raw = response.raw_response
            try:
                async for chunk in raw.aiter_bytes():
                    tail += chunk
                    if len(tail) > 2 * max_bytes:
                        del tail[:-max_bytes]
            finally:
                await raw.aclose()
        return bytes(tail[-max_bytes:]).decode("utf-8", "replace")

    # ------------------------------------------------------------------ OAuth sign-in

    def authorize_url(
        self, state: str, redirect_uri: str, scopes: Sequence[str] = DEFAULT_OAUTH_SCOPES
    ) -> str:
        """The GitHub page that signs the person in and returns to ``redirect_uri``."""
        return self._oauth.authorize_url(state, redirect_uri, scopes)

    async def exchange_code(self, code: str, redirect_uri: str) -> OAuthToken:
        """The user's token for the ``code`` GitHub sent back to ``redirect_uri``."""
        return await self._oauth.exchange_code(code, redirect_uri)

    async def refresh_user_token(self, refresh_token: str) -> OAuthToken:
        """A fresh user token (and refresh token) for an expiring one."""
        return await self._oauth.refresh_user_token(refresh_token)

    async def start_device_flow(self, scopes: Sequence[str] = DEFAULT_OAUTH_SCOPES) -> DeviceCode:
        """Begin a device sign-in (for the CLI)."""
        return await self._oauth.start_device_flow(scopes)

    async def poll_device_flow(self, device_code: str) -> DevicePoll:
        """Poll a device sign-in once."""
        return await self._oauth.poll_device_flow(device_code)

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close connections. Safe to call twice."""
        await self._oauth.aclose()
        if self._owns_transport:
            await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
