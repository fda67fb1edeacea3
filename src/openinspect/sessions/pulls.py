"""Pull requests of sessions: opened as the person who asked, one per branch, state from webhooks.

A PR is opened with the prompting user's own GitHub token, so it is theirs on GitHub. A user
without one (signed in with an admin token, say) gets the App as the author and the body says on
whose behalf it was opened. Asking again for the same branch updates the open PR's title and body
instead of failing; a merged or closed PR frees the branch for a new one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from openinspect.domain.events import PrOpened, PrUpdated
from openinspect.domain.models import (
    OpenedAs,
    PullRequestRecord,
    PullRequestState,
    Session,
    User,
)
from openinspect.errors import (
    InvalidInput,
    NotConfigured,
    OpenInspectError,
    PullRequestEmpty,
    ScmError,
)
from openinspect.scm.base import PullRequest, RepoRef, parse_repo_url
from openinspect.sessions.eventlog import EventLog
from openinspect.store import Store

if TYPE_CHECKING:  # githubkit is heavy: loaded with the client (people.service), not here
    from openinspect.scm.github import GitHub

log = logging.getLogger(__name__)
TITLE_MAX_CHARS = 256
GITHUB_UNPROCESSABLE = 422  # GitHub's answer to a PR it will not open (validation failed)
BODY_MAX_CHARS = 60_000  # GitHub refuses bodies over 65,536 characters; leave room for the footer


class UserTokens(Protocol):
    """Where a user's own GitHub token and login come from (refreshed when expired)."""

    async def github_token(self, user_id: str) -> str | None:
        """The user's usable OAuth token, or None when they have none."""

    async def github_login(self, user_id: str) -> str | None:
        """The user's GitHub login, or None when they never signed in with GitHub."""


def behalf_footer(user: User, login: str | None) -> str:
    who = f"@{login}" if login else f"{user.name} <{user.git_email}>"
    return f"\n\n---\nOpened by openinspect on behalf of {who}."


class PullRequests:
    def __init__(
        self,
        *,
        store: Store,
        events: EventLog,
        github: GitHub | None,
        user_tokens: UserTokens | None,
        web_url: str,
    ) -> None:
        self._store = store
        self._events = events
        self._github = github
        self._user_tokens = user_tokens
        self._web_url = web_url

    def repo_of(self, session: Session) -> RepoRef:
        repo = parse_repo_url(session.repo_url, self._web_url)
        if repo is None:
            raise InvalidInput(
                f"Pull requests need a GitHub repository; this session is on {session.repo_url}",
                hint="Start the session on a GitHub repo (https://github.com/owner/name)",
            )
        return repo

    def cannot_open_reason(self, session: Session) -> str | None:
        """Why ``session`` can never open a pull request (not a GitHub repo, or GitHub is not
        configured), or None when it can: clients hide the action instead of offering an error."""
        try:
            self.repo_of(session)
            self._client()
        except OpenInspectError as exc:
            return str(exc)
        return None

    @property
    def github(self) -> GitHub | None:
        """The App's client, when GitHub is configured."""
        return self._github

    def _client(self) -> GitHub:
        if self._github is None:
            raise NotConfigured(
                "GitHub is not configured, so pull requests cannot be opened",
                hint="Set OPENINSPECT_GITHUB__APP_ID and OPENINSPECT_GITHUB__APP_PRIVATE_KEY "
                "(see docs/github.md)",
            )
        return self._github

    async def open_or_update(
        self,
        session: Session,
        user: User,
        *,
        title: str,
        body: str,
        draft: bool = False,
        prompt_id: str | None = None,
    ) -> PullRequestRecord:
        """Open the session branch's PR as ``user``, or update the open one."""
        title = title.strip()
        if not title or len(title) > TITLE_MAX_CHARS:
            raise InvalidInput(
                f"A pull request title must have 1 to {TITLE_MAX_CHARS} characters",
                hint="Summarise the change in one line",
            )
        if len(body) > BODY_MAX_CHARS:
            raise InvalidInput(f"A pull request body must be under {BODY_MAX_CHARS} characters")
        repo = self.repo_of(session)
        github = self._client()
        tokens = self._user_tokens
        token = await tokens.github_token(user.id) if tokens else None
        login = await tokens.github_login(user.id) if tokens else None
        if token is None:
            body += behalf_footer(user, login)
        known = await self._store.pulls.for_branch(session.id, session.branch)
        current = await self._open_pull(github, repo, session.branch, known)
        if current is not None:
            pull = await github.update_pull(
                repo, current.number, title=title, body=body, user_token=token
            )
            record = await self._save(session, repo, pull, "user" if token else "app", known)
            await self._events.append(
                PrUpdated(
                    session_id=session.id,
                    prompt_id=prompt_id,
                    url=record.url,
                    number=record.number,
                    state=record.state,
                )
            )
            return record
        try:
            pull = await github.create_pull(
                repo,
                head=session.branch,
                base=session.base_branch,
                title=title,
                body=body,
                draft=draft,
                user_token=token,
            )
        except ScmError as exc:
            raise _refused_pull(exc, session) from exc
        record = await self._save(session, repo, pull, "user" if token else "app", None)
        await self._events.append(
            PrOpened(session_id=session.id, prompt_id=prompt_id, url=record.url, number=pull.number)
        )
        return record

    async def _open_pull(
        self, github: GitHub, repo: RepoRef, branch: str, known: PullRequestRecord | None
    ) -> PullRequest | None:
        if known is not None and known.state == "open":
            pull = await github.get_pull(repo, known.number)
            if pull.state == "open":
                return pull
        # Opened outside openinspect, or our record is stale: GitHub allows one open PR per head.
        found = await github.find_pull(repo, branch)
        return found if found is not None and found.state == "open" else None

    async def _save(
        self,
        session: Session,
        repo: RepoRef,
        pull: PullRequest,
        opened_as: OpenedAs,
        known: PullRequestRecord | None,
    ) -> PullRequestRecord:
        return await self._store.pulls.save(
            session_id=session.id,
            repo=repo.slug,
            number=pull.number,
            url=pull.url,
            branch=session.branch,
            base=pull.base,
            title=pull.title,
            state=pull.state,
            draft=pull.draft,
            # An update keeps who opened it; only a new PR takes the current opener.
            opened_as=known.opened_as if known and known.number == pull.number else opened_as,
            author_login=pull.author_login,
        )

    async def apply_webhook(self, payload: Mapping[str, Any]) -> PullRequestRecord | None:
        """A ``pull_request`` delivery: record the new state and tell the session. Returns the
        PR when a session owns it."""
        pull = payload.get("pull_request")
        repository = payload.get("repository")
        if not isinstance(pull, Mapping) or not isinstance(repository, Mapping):
            raise InvalidInput("A pull_request delivery needs 'pull_request' and 'repository'")
        number = pull.get("number")
        full_name = repository.get("full_name")
        if not isinstance(number, int) or not isinstance(full_name, str):
            raise InvalidInput("pull_request.number or repository.full_name is missing")
        state: PullRequestState = (
            "merged"
            if pull.get("merged")
            else "closed"
            if pull.get("state") == "closed"
            else "open"
        )
        before = await self._store.pulls.by_number(full_name, number)
        if before is None:
            return None
        record = await self._store.pulls.set_state(full_name, number, state)
        if record is not None and before.state != state:
            await self._events.append(
                PrUpdated(
                    session_id=record.session_id,
                    url=record.url,
                    number=record.number,
                    state=record.state,
                )
            )
        return record


def _refused_pull(exc: ScmError, session: Session) -> ScmError | PullRequestEmpty:
    """GitHub validates a new PR (HTTP 422): a branch with no commits over its base, or one that
    was never pushed, is the caller's mistake (4xx with a code), not GitHub failing."""
    if exc.details.get("github_status") != GITHUB_UNPROCESSABLE:
        return exc
    return PullRequestEmpty(
        f"No pull request to open: {session.branch} has no commits over {session.base_branch} "
        f"({exc.message})",
        hint="Let a prompt change something first (the branch is pushed after each prompt)",
    )
