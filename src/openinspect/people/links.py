"""Web sign-ins that do not go through GitHub: one-time sign-in links an admin mints for a
person, and the exchange of a pasted token for a browser sign-in.

A sign-in link is ``<server>/auth/link#code=oil_…``: the code travels in the URL *fragment*
(never sent to a server, so in no access log), the web app posts it to ``POST /auth/login-link``
and gets a ``web`` token (expiring after ``auth.web_token_ttl_s``). Codes are random (32 bytes),
stored hashed as ``link`` rows of ``api_tokens``, expire after ``auth.login_link_ttl_s`` and work
once (see ``UserStore.redeem_login_link``); minting a new link for someone voids their older
unused one.

Failed redemptions are counted per client address in a small sliding window
(``FailedAttempts``): past the limit, the client gets ``sign_in_rate_limited`` until the window
moves on. The count is per replica — a code has 256 random bits, so the limit is a brake on
noise, not what keeps codes secret — and needs no shared state.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from openinspect.domain.events import utcnow
from openinspect.domain.models import User
from openinspect.errors import LoginLinkInvalid, SignInRateLimited
from openinspect.settings import AuthSettings
from openinspect.store import Store
from openinspect.store.users import ApiToken

LINK_PATH = "/auth/link"
LINK_TOKEN_NAME = "sign-in link"  # noqa: S105 - a label
PASTED_TOKEN_NAME = "web sign-in (pasted token)"  # noqa: S105 - a label
CODE_MAX_CHARS = 100
FAILED_ATTEMPTS_MAX = 10
FAILED_WINDOW_S = 60.0
_CLIENTS_MAX = 10_000


@dataclass(frozen=True)
class MintedLink:
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class WebSignIn:
    token: str
    record: ApiToken
    user: User


class FailedAttempts:
    """At most ``limit`` failures per client in ``window_s`` seconds (in this process)."""

    def __init__(self, limit: int = FAILED_ATTEMPTS_MAX, window_s: float = FAILED_WINDOW_S):
        self._limit = limit
        self._window_s = window_s
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._seen.setdefault(client, deque())
        self._seen.move_to_end(client)
        while times and times[0] <= now - self._window_s:
            times.popleft()
        while len(self._seen) > _CLIENTS_MAX:  # forget the least recently seen client
            self._seen.popitem(last=False)
        return times

    def check(self, client: str) -> None:
        """Raise ``SignInRateLimited`` when the client failed too often lately."""
        if len(self._recent(client, time.monotonic())) >= self._limit:
            raise SignInRateLimited(
                "Too many failed sign-in attempts from this address",
                hint=f"Wait a minute and try again (at most {self._limit} failures a minute)",
            )

    def failed(self, client: str) -> None:
        now = time.monotonic()
        self._recent(client, now).append(now)


class LoginLinks:
    def __init__(self, settings: AuthSettings, store: Store) -> None:
        self._settings = settings
        self._store = store
        self.failures = FailedAttempts()

    def _web_expiry(self) -> datetime:
        return utcnow() + timedelta(seconds=self._settings.web_token_ttl_s)

    async def mint(self, user: User, base_url: str, minted_by: User) -> MintedLink:
        """A one-time sign-in link for ``user`` (checked to exist by the caller)."""
        expires_at = utcnow() + timedelta(seconds=self._settings.login_link_ttl_s)
        code, _ = await self._store.users.mint_login_link(
            user.id, f"sign-in link from {minted_by.name}"[:200], expires_at
        )
        return MintedLink(f"{base_url}{LINK_PATH}#code={code}", expires_at)

    async def redeem(self, code: str, client: str) -> WebSignIn:
        """Exchange a link's code for a web token, once. Raises ``LoginLinkInvalid`` and its
        subclasses, or ``SignInRateLimited``."""
        self.failures.check(client)
        try:
            token, record, user = await self._store.users.redeem_login_link(
                code, LINK_TOKEN_NAME, self._web_expiry()
            )
        except LoginLinkInvalid:
            self.failures.failed(client)
            raise
        return WebSignIn(token, record, user)

    async def exchange(self, user: User, token_id: str, kind: str) -> WebSignIn:
        """A web token for the holder of a pasted token, so that the browser never keeps a
        long-lived one (the admin token, an API token). A pasted ``web`` token is replaced:
        the old one is revoked."""
        token, record = await self._store.users.mint_token(
            user.id, PASTED_TOKEN_NAME, kind="web", expires_at=self._web_expiry()
        )
        if kind == "web":
            await self._store.users.revoke_token(token_id)
        return WebSignIn(token, record, user)
