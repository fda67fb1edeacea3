"""``FakeGitHub``: a local GitHub (REST API, OAuth, webhooks, smart-HTTP git) for tests and demos.

It speaks GitHub's wire formats, so githubkit, our ``scm.github.GitHub`` and the git CLI work
against it unchanged; only the base URL differs. The web host is ``fake.url``
(``http://127.0.0.1:PORT``) and the REST API is under ``/api/v3`` as on GitHub Enterprise
Server, so ``GitHubSettings(web_url=fake.url)`` finds it (``fake.settings()`` fills in the rest)::

    with FakeGitHub() as fake:
        alice = fake.add_user("alice")
        fake.create_repo("acme/widgets", source=origin, collaborators={"alice": "push"})
        fake.add_installation(["acme/widgets"])
        async with GitHub(fake.settings()) as gh:
            token = await gh.installation_token(RepoRef("acme", "widgets"))

Control calls (``merge_pull``…) deliver their webhook before returning; events caused by API
requests and git pushes are delivered in the background, in order (``wait_for_deliveries``).
From async tests whose webhook receiver runs on the test's own loop, use the ``a…`` variants.

People act on pull requests through ``people.People`` (mixed in): ``fork``, ``open_pull``
(from a branch or ``user:branch`` of a fork), ``ready_for_review``, ``request_review`` (the
App's bot by default), ``comment``, ``review_comment`` (a thread or a reply) and
``submit_review``, each returning ``Acted(record, deliveries)``. A PR's diff
(``GET …/pulls/{n}/files``, ``Accept: application/vnd.github.diff``) is computed with git, and
review comments must anchor in it (``reviews``); see ``control`` for the same over HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from openinspect.settings import GitHubSettings
from openinspect.testing.background import STOP_TIMEOUT_S, BackgroundServer
from openinspect.testing.github import api, api_reviews, checks, control, gitops, oauth, pulls
from openinspect.testing.github.core import Core, Failure, RecordedRequest, RequestLogMiddleware
from openinspect.testing.github.git_http import GitHttp
from openinspect.testing.github.people import People
from openinspect.testing.github.records import (
    EmailRec,
    HookRec,
    InstallationTokenRec,
    Permission,
    PullRec,
    RepoRec,
    UserRec,
)
from openinspect.testing.github.shapes import Site
from openinspect.testing.github.state import FakeState
from openinspect.testing.github.webhooks import DEFAULT_DELIVERY_TIMEOUT_S, Deliverer, Delivery

EmailSpec = str | tuple[str, bool, bool] | EmailRec


def _emails(login: str, emails: Sequence[EmailSpec] | None) -> list[EmailRec]:
    if emails is None:
        return [EmailRec(email=f"{login.lower()}@example.com", verified=True, primary=True)]
    out = []
    for i, spec in enumerate(emails):
        if isinstance(spec, EmailRec):
            out.append(spec)
        elif isinstance(spec, str):
            out.append(EmailRec(email=spec, verified=True, primary=i == 0))
        else:
            out.append(EmailRec(email=spec[0], verified=spec[1], primary=spec[2]))
    return out


class FakeGitHub(People, BackgroundServer):
    """The fake, served from a background thread (``start``/``stop`` or a context manager).

    ``data_dir`` keeps the state (``state.json``) and the bare repositories; without it they
    live in a temporary directory removed by ``stop()``.
    """

    label = "fake GitHub"

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_timeout_s: float = DEFAULT_DELIVERY_TIMEOUT_S,
    ) -> None:
        self._tmp: Path | None = None
        if data_dir is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="fake-github-"))
            root, persist = self._tmp, False
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            root, persist = data_dir, True
        self.data_dir = root
        self.core = Core(FakeState(root, persist=persist), Deliverer(webhook_timeout_s))
        super().__init__(host=host, port=port)
        self._app = self._build_app()

    @property
    def state(self) -> FakeState:
        return self.core.state

    def _build_app(self) -> ASGIApp:
        routes = [
            *control.routes(self),
            *api.routes(self.core, api_reviews.TABLE),
            *oauth.routes(self.core),
            Route(checks.LOG_PATH, self._log_blob),
            Route("/{owner}/{repo}/{rest:path}", GitHttp(self.core)),
        ]
        return RequestLogMiddleware(Starlette(routes=routes), self.core)

    async def _log_blob(self, request: Request) -> Response:
        return checks.log_blob(self.state, request)

    # ------------------------------------------------------------------ lifecycle

    def _asgi_app(self) -> ASGIApp:
        return self._app

    def _on_listen(self) -> None:
        self.core.site = Site(self.base_url)
        self.core.deliverer.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop serving, stop webhook delivery, remove the temporary directory. Idempotent."""
        super().stop(timeout_s)
        self.core.deliverer.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # ------------------------------------------------------------------ addresses and settings

    @property
    def url(self) -> str:
        """The web host, ``http://127.0.0.1:PORT``: OAuth pages and git remotes."""
        self.port  # noqa: B018 - raises when not started
        return self.core.site.web

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v3"

    @property
    def app(self) -> ASGIApp:
        """The ASGI app (with the request log), e.g. for ``httpx.ASGITransport``."""
        return self._app

    @property
    def app_id(self) -> int:
        return self.state.app.id

    @property
    def client_id(self) -> str:
        return self.state.app.client_id

    @property
    def client_secret(self) -> str:
        return self.state.app.client_secret

    @property
    def webhook_secret(self) -> str:
        return self.state.app.webhook_secret

    def app_private_key_pem(self, format: Literal["pkcs1", "pkcs8"] = "pkcs1") -> str:  # noqa: A002
        """The App's private key as GitHub hands it out (PKCS#1) or converted to PKCS#8."""
        pem = self.state.app.private_key_pem
        if format == "pkcs1":
            return pem
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def settings(self, **overrides: object) -> GitHubSettings:
        """``GitHubSettings`` pointing at this fake: App, OAuth client and webhook secret. The
        installation is looked up per repository unless ``installation_id=`` is given."""
        values: dict[str, object] = {
            "web_url": self.url,
            "app_id": self.app_id,
            "app_private_key": SecretStr(self.app_private_key_pem()),
            "client_id": self.client_id,
            "client_secret": SecretStr(self.client_secret),
            "webhook_secret": SecretStr(self.webhook_secret),
        }
        return GitHubSettings.model_validate(values | overrides)

    def clone_url(self, repo: str, token: str | None = None, user: str = "x-access-token") -> str:
        """``http://[user:token@]127.0.0.1:PORT/owner/name.git``."""
        owner, _, name = self.state.require_repo(repo).full_name.partition("/")
        host = self.url.split("://", 1)[1]
        creds = f"{user}:{token}@" if token else ""
        return f"http://{creds}{host}/{owner}/{name}.git"

    # ------------------------------------------------------------------ users, repos, the App

    def add_user(
        self,
        login: str,
        *,
        name: str | None = None,
        emails: Sequence[EmailSpec] | None = None,
        orgs: Sequence[str] = (),
    ) -> UserRec:
        """A user; ``emails`` are strings (first is primary, all verified), ``(email, verified,
        primary)`` tuples or ``EmailRec``; default ``<login>@example.com``."""
        return self.state.add_user(login, name=name, emails=_emails(login, emails), orgs=list(orgs))

    def create_repo(
        self,
        full_name: str,
        *,
        source: Path | str | None = None,
        private: bool = True,
        default_branch: str = "main",
        collaborators: dict[str, Permission] | None = None,
    ) -> RepoRec:
        """A repository, empty or with every branch and tag of the git repo at ``source``."""
        return self.state.create_repo(
            full_name,
            source=Path(source) if source is not None else None,
            private=private,
            default_branch=default_branch,
            collaborators=dict(collaborators or {}),
        )

    def add_installation(
        self,
        repos: Sequence[str],
        *,
        account: str | None = None,
        permissions: dict[str, str] | None = None,
    ) -> int:
        """Install the App on ``repos`` (``owner/name``); returns the installation id."""
        return self.state.add_installation(list(repos), account, permissions).id

    def mint_installation_token(
        self, installation_id: int, repos: Sequence[str] | None = None
    ) -> InstallationTokenRec:
        """An installation token minted directly (tests normally go through ``GitHub``)."""
        return self.state.mint_installation_token(
            installation_id, list(repos) if repos is not None else None, None
        )

    def set_installation_token_ttl(self, seconds: float) -> None:
        with self.state.change() as data:
            data.settings.installation_token_ttl_s = seconds

    def expire_installation_tokens(self) -> None:
        """Every installation token minted so far is refused from now on."""
        self.state.expire_installation_tokens()

    # ------------------------------------------------------------------ sign-in

    def set_oauth_user(self, login: str | None, *, deny: bool = False) -> None:
        """Who is signed in at the authorize page (None: show a picker); ``deny`` makes the
        page send ``error=access_denied`` back instead."""
        if login is not None:
            self.state.require_user(login)
        with self.state.change() as data:
            data.settings.oauth_user = login
            data.settings.oauth_deny = deny

    def set_user_token_ttl(self, seconds: float | None) -> None:
        """Lifetime of new user tokens; None: they never expire and have no refresh token."""
        with self.state.change() as data:
            data.settings.user_token_ttl_s = seconds

    def set_device_flow(
        self, *, interval_s: float | None = None, expires_s: float | None = None
    ) -> None:
        """Polling interval and lifetime of new device sign-ins (GitHub: 5 s and 15 min)."""
        with self.state.change() as data:
            if interval_s is not None:
                data.settings.device_interval_s = interval_s
            if expires_s is not None:
                data.settings.device_expires_s = expires_s

    def approve_device(self, user_code: str, login: str) -> None:
        self.state.decide_device(user_code, login)

    def deny_device(self, user_code: str) -> None:
        self.state.decide_device(user_code, None)

    def user_token(self, login: str) -> str:
        """A user token for ``login``, as if they had signed in."""
        return self.state.mint_user_token(login).token

    def expire_user_token(self, token: str) -> None:
        self.state.expire_user_token(token)

    # ------------------------------------------------------------------ pull requests

    def pull(self, repo: str, number: int) -> PullRec:
        return pulls.get(self.state.require_repo(repo), number)

    def pulls(self, repo: str) -> list[PullRec]:
        return sorted(self.state.require_repo(repo).pulls.values(), key=lambda p: p.number)

    def merge_pull(self, repo: str, number: int, *, by: str | None = None) -> Delivery | None:
        """Merge like the merge button (a merge commit on the base branch), then deliver the
        ``pull_request`` ``closed`` webhook with ``merged: true``. Returns the delivery."""
        rec = self.state.require_repo(repo)
        merger = by or rec.owner
        pull = pulls.merge(self.state, rec, number, merger)
        views = self.core.views
        sender = views.login(merger)
        self.core.emit(
            "push",
            views.push_event(
                rec, f"refs/heads/{pull.base}", pull.base_sha, pull.merge_commit_sha or "", sender
            ),
            sync=True,
        )
        return self.core.emit(
            "pull_request", views.pull_request_event("closed", rec, pull, sender), sync=True
        )

    def close_pull(self, repo: str, number: int, *, by: str | None = None) -> Delivery | None:
        """Close without merging and deliver ``closed`` with ``merged: false``."""
        rec = self.state.require_repo(repo)
        pull = pulls.close(self.state, rec, number)
        sender = self.core.views.login(by or rec.owner)
        return self.core.emit(
            "pull_request",
            self.core.views.pull_request_event("closed", rec, pull, sender),
            sync=True,
        )

    async def amerge_pull(
        self, repo: str, number: int, *, by: str | None = None
    ) -> Delivery | None:
        return await asyncio.to_thread(self.merge_pull, repo, number, by=by)

    async def aclose_pull(
        self, repo: str, number: int, *, by: str | None = None
    ) -> Delivery | None:
        return await asyncio.to_thread(self.close_pull, repo, number, by=by)

    # ------------------------------------------------------------------ CI

    def fail_check(
        self,
        repo: str,
        number: int,
        *,
        name: str = "tests",
        log: str = "Error: the tests failed\n",
        conclusion: str = "failure",
        workflow: str = "CI",
        title: str | None = "Tests failed",
        summary: str | None = None,
        text: str | None = None,
        events: Sequence[str] = ("check_run", "workflow_run"),
    ) -> list[Delivery]:
        """A GitHub Actions run failing on PR ``number``'s head: one workflow run with one job
        ``name`` whose log is ``log``; delivers ``check_run`` and ``workflow_run``
        ``completed`` (those of ``events``) before returning them."""
        rec = self.state.require_repo(repo)
        pull = pulls.get(rec, number)
        run, job = checks.fail(
            self.state,
            rec,
            pull,
            name=name,
            log=log,
            conclusion=conclusion,
            workflow=workflow,
            actor=pull.user_login,
            title=title,
            summary=summary,
            text=text,
        )
        views = self.core.views
        sender = views.login(self.state.app.bot_login, True)
        payloads = {
            "check_run": lambda: views.check_run_event(rec, job, sender),
            "workflow_run": lambda: views.workflow_run_event(rec, run, views.login(run.actor)),
        }
        sent = [self.core.emit(event, payloads[event](), sync=True) for event in events]
        return [d for d in sent if d is not None]

    async def afail_check(self, repo: str, number: int, **kw: Any) -> list[Delivery]:
        return await asyncio.to_thread(functools.partial(self.fail_check, repo, number, **kw))

    # ------------------------------------------------------------------ git

    def bare_path(self, repo: str) -> Path:
        return self.state.bare_path(self.state.require_repo(repo))

    def branch_sha(self, repo: str, branch: str) -> str | None:
        return gitops.branch_sha(self.bare_path(repo), branch)

    def branches(self, repo: str) -> dict[str, str]:
        return gitops.refs(self.bare_path(repo), "refs/heads/")

    def commit(
        self,
        repo: str,
        branch: str,
        files: dict[str, str] | None = None,
        message: str | None = None,
        *,
        by: str | None = None,
    ) -> str:
        """Commit ``files`` (path → text) on ``branch`` as if ``by`` pushed it (a new branch
        starts from the default branch); delivers the ``push`` webhook. Returns the sha."""
        rec = self.state.require_repo(repo)
        who = self.state.require_user(by) if by else None
        login = who.login if who else rec.owner
        old, new = gitops.commit_files(
            self.state.bare_path(rec),
            branch,
            files or {f"{branch.replace('/', '-')}.txt": f"{branch}\n"},
            message or f"Update {branch}",
            start=rec.default_branch,
            author=(login, f"{login.lower()}@users.noreply.github.com"),
        )
        sender = self.core.views.login(login)
        self.core.announce_push(rec, sender, [(f"refs/heads/{branch}", old, new)], sync=True)
        return new

    # ------------------------------------------------------------------ webhooks

    def subscribe_webhooks(self, url: str, secret: str | None = None) -> None:
        """Send the App's webhooks to ``url``, signed with ``secret`` (default: the App's)."""
        with self.state.change() as data:
            data.hook = HookRec(url=url, secret=secret or data.app.webhook_secret)

    @property
    def deliveries(self) -> list[Delivery]:
        return self.core.deliverer.records()

    def wait_for_deliveries(
        self,
        count: int = 1,
        *,
        event: str | None = None,
        action: str | None = None,
        timeout_s: float = 5.0,
    ) -> list[Delivery]:
        """Block until ``count`` deliveries of ``event``/``action`` were made; return those."""

        def matching(records: list[Delivery]) -> list[Delivery]:
            return [
                d
                for d in records
                if (event is None or d.event == event) and (action is None or d.action == action)
            ]

        self.core.deliverer.wait_for(lambda r: len(matching(r)) >= count, timeout_s)
        return matching(self.deliveries)

    async def await_deliveries(
        self,
        count: int = 1,
        *,
        event: str | None = None,
        action: str | None = None,
        timeout_s: float = 5.0,
    ) -> list[Delivery]:
        return await asyncio.to_thread(
            self.wait_for_deliveries, count, event=event, action=action, timeout_s=timeout_s
        )

    def redeliver(self, delivery_id: str) -> Delivery:
        """Send a past delivery again: same ``X-GitHub-Delivery`` id, same body and signature."""
        original = self.core.deliverer.find(delivery_id)
        if original is None:
            raise ValueError(f"no delivery {delivery_id!r}")
        hook = self.state.data.hook
        url, secret = (hook.url, hook.secret) if hook else (original.url, self.webhook_secret)
        return self.core.deliverer.send(
            url, secret, original.event, original.body, delivery_id=original.id, redelivery=True
        )

    async def aredeliver(self, delivery_id: str) -> Delivery:
        return await asyncio.to_thread(self.redeliver, delivery_id)

    # ------------------------------------------------------------------ requests and failures

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request answered so far (not ``/_fake``), with the identity that made it."""
        return self.core.requests()

    def clear_requests(self) -> None:
        self.core.clear_requests()

    def requests_to(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        """Logged requests with ``method`` whose path matches the regex ``path_pattern``."""
        pattern = re.compile(path_pattern)
        return [r for r in self.requests if r.method == method and pattern.search(r.path)]

    def inject_failure(
        self,
        path_pattern: str,
        status: int,
        message: str = "Server Error",
        *,
        method: str | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` requests whose path matches the regex get ``status`` with
        GitHub's error JSON and ``headers`` (e.g. rate-limit headers) instead of an answer."""
        self.core.add_failure(
            Failure(method, re.compile(path_pattern), status, message, dict(headers or {}), times)
        )
