"""What every part of the fake shares: the state, the site's URLs, webhook delivery, the
request log and injected failures; plus the ASGI middleware that logs each request."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openinspect.testing.github import forks, pulls
from openinspect.testing.github.auth import describe
from openinspect.testing.github.gitops import EMPTY_SHA
from openinspect.testing.github.records import RepoRec
from openinspect.testing.github.shapes import Site
from openinspect.testing.github.state import DOCS, FakeState
from openinspect.testing.github.views import Views
from openinspect.testing.github.webhooks import Deliverer, Delivery

Surface = Literal["api", "oauth", "git", "web"]
AuthKind = Literal["anonymous", "app", "installation", "user", "invalid"]
GIT_SERVICE_RE = re.compile(r"^/[^/]+/[^/]+/(info/refs|git-upload-pack|git-receive-pack)$")


class RecordedRequest(BaseModel):
    """One request the fake answered (control endpoints under ``/_fake`` are not logged)."""

    model_config = ConfigDict(frozen=True)

    index: int
    method: str
    path: str
    query: str
    surface: Surface
    auth: AuthKind
    """Which identity made it; ``invalid`` for refused credentials."""
    login: str | None
    """The user, or the App's bot login for an installation token."""
    installation_id: int | None
    status: int
    received_at: float


@dataclass
class Failure:
    """An injected failure: the next ``times`` requests matching get this answer instead."""

    method: str | None
    path_re: re.Pattern[str]
    status: int
    message: str
    headers: dict[str, str]
    times: int


@dataclass
class Core:
    state: FakeState
    deliverer: Deliverer
    site: Site = field(default_factory=lambda: Site("http://127.0.0.1:0"))
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _log: list[RecordedRequest] = field(default_factory=list)
    _failures: list[Failure] = field(default_factory=list)

    @property
    def views(self) -> Views:
        return Views(self.state, self.site)

    # ------------------------------------------------------------------ webhooks

    def emit(self, event: str, payload: dict[str, Any], *, sync: bool) -> Delivery | None:
        """Deliver ``event`` to the subscribed URL: now (control calls) or queued (API, git)."""
        hook = self.state.data.hook
        if hook is None:
            return None
        body = Deliverer.body_of(payload)
        if sync:
            return self.deliverer.send(hook.url, hook.secret, event, body)
        self.deliverer.enqueue(hook.url, hook.secret, event, body)
        return None

    def announce_push(
        self,
        repo: RepoRec,
        sender: dict[str, Any],
        changes: list[tuple[str, str, str]],
        *,
        sync: bool,
    ) -> None:
        """After refs changed (``(ref, old, new)``): ``push`` webhooks, and ``synchronize`` for
        open PRs (of this repo, or of its parent for a fork) whose head branch moved."""
        changes = [c for c in changes if not c[0].startswith(forks.PULL_REFS)]
        if not changes:
            return
        state, views = self.state, self.views
        with state.change():
            repo.pushed_at = time.time()
        for ref, old, new in changes:
            self.emit("push", views.push_event(repo, ref, old, new, sender), sync=sync)
            if not ref.startswith("refs/heads/") or new == EMPTY_SHA:
                continue
            for base, pull in forks.pulls_headed_at(state, repo, ref.removeprefix("refs/heads/")):
                pulls.refresh_head(state, base, pull)
                event = views.pull_request_event("synchronize", base, pull, sender)
                self.emit("pull_request", event, sync=sync)

    # ------------------------------------------------------------------ request log

    def record(self, **fields: Any) -> None:
        with self._lock:
            self._log.append(RecordedRequest(index=len(self._log), **fields))
            self._lock.notify_all()

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    # ------------------------------------------------------------------ failures

    def add_failure(self, failure: Failure) -> None:
        with self._lock:
            self._failures.append(failure)

    def take_failure(self, method: str, path: str) -> Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.method not in (None, method) or not failure.path_re.search(path):
                    continue
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None


def surface_of(path: str) -> Surface:
    if path.startswith("/api/v3"):
        return "api"
    if path.startswith("/login/"):
        return "oauth"
    if GIT_SERVICE_RE.match(path):
        return "git"
    return "web"


class RequestLogMiddleware:
    """Logs every request with the identity it carried and the status it got, and answers
    injected failures before the app sees the request."""

    def __init__(self, app: ASGIApp, core: Core) -> None:
        self.app = app
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_fake"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        surface = surface_of(path)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        identity = describe(self.core.state, headers.get("authorization"), git=surface == "git")
        if identity is None:
            auth: AuthKind = "invalid"
        else:
            auth = identity.kind  # type: ignore[assignment]
        received_at = time.time()
        recorded = False

        def record(status: int) -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                self.core.record(
                    method=scope["method"],
                    path=path,
                    query=scope.get("query_string", b"").decode("latin-1"),
                    surface=surface,
                    auth=auth,
                    login=identity.login if identity else None,
                    installation_id=identity.installation_id if identity else None,
                    status=status,
                    received_at=received_at,
                )

        failure = self.core.take_failure(scope["method"], path)
        if failure is not None:
            body = json.dumps({"message": failure.message, "documentation_url": DOCS}).encode()
            record(failure.status)
            await send(
                {
                    "type": "http.response.start",
                    "status": failure.status,
                    "headers": [
                        (b"content-type", b"application/json; charset=utf-8"),
                        *((k.lower().encode(), v.encode()) for k, v in failure.headers.items()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_and_log(message: Message) -> None:
            if message["type"] == "http.response.start":
                record(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_and_log)
        finally:
            record(500)
