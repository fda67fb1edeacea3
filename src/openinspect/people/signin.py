"""Sign in with GitHub: turn an OAuth token (from the web flow or the device flow) into an admitted
user and an openinspect API token.

The steps are the same for both flows: ask GitHub who the token belongs to, apply the allowlists
(``people.admission``), create or update the user and their identity (the OAuth tokens sealed at
rest), and mint a token of our own — ``web`` (expiring after ``auth.web_token_ttl_s``) for a
browser, ``cli`` for ``openinspect login``. A refused person leaves no trace in the store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from openinspect.domain.events import utcnow
from openinspect.domain.models import User
from openinspect.errors import ScmError
from openinspect.people.admission import Admission, VerifiedEmail
from openinspect.scm.base import DeviceCode, DevicePoll, OAuthToken, ScmUser, UserEmail
from openinspect.scm.user_tokens import PROVIDER, stored
from openinspect.settings import GITHUB_WEB_URL, Settings
from openinspect.store import Store
from openinspect.store.identities import Identity, NewUser
from openinspect.store.users import TokenKind

if TYPE_CHECKING:  # githubkit is heavy: loaded with the client (people.service), not here
    from openinspect.scm.github import GitHub

log = logging.getLogger(__name__)
WEB_TOKEN_NAME = "web sign-in"  # noqa: S105 - a label
CLI_TOKEN_NAME = "openinspect login"  # noqa: S105 - a label


def noreply_email(user_id: int, login: str, web_url: str) -> str:
    """GitHub's private commit email of an account: ``<id>+<login>@users.noreply.<host>``."""
    host = urlsplit(web_url if "//" in web_url else f"https://{web_url}").hostname or "github.com"
    if web_url.rstrip("/") == GITHUB_WEB_URL:
        host = "github.com"
    return f"{user_id}+{login}@users.noreply.{host}"


@dataclass(frozen=True)
class SignInResult:
    user: User
    identity: Identity
    token: str
    created: bool


class GitHubSignIn:
    def __init__(
        self, settings: Settings, store: Store, github: GitHub, admission: Admission
    ) -> None:
        self._settings = settings
        self._store = store
        self._github = github
        self.admission = admission

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        return self._github.authorize_url(state, redirect_uri)

    async def complete_web(self, code: str, redirect_uri: str) -> SignInResult:
        """The callback of the web flow: exchange the code, admit, sign in, mint a web token."""
        oauth = await self._github.exchange_code(code, redirect_uri)
        ttl = timedelta(seconds=self._settings.auth.web_token_ttl_s)
        return await self.sign_in(oauth, kind="web", name=WEB_TOKEN_NAME, ttl=ttl)

    async def start_device(self) -> DeviceCode:
        return await self._github.start_device_flow()

    async def poll_device(
        self, device_code: str, token_name: str | None = None
    ) -> DevicePoll | SignInResult:
        """One poll of the device flow: a ``SignInResult`` once the person approved (and was
        admitted), else GitHub's answer (pending, slow_down, expired, denied)."""
        poll = await self._github.poll_device_flow(device_code)
        if poll.status != "ok" or poll.token is None:
            return poll
        return await self.sign_in(poll.token, kind="cli", name=token_name or CLI_TOKEN_NAME)

    async def sign_in(
        self, oauth: OAuthToken, *, kind: TokenKind, name: str, ttl: timedelta | None = None
    ) -> SignInResult:
        gh_user = await self._github.get_user(oauth.access_token)
        emails: list[UserEmail] | None = None

        async def get_emails() -> list[UserEmail]:
            nonlocal emails
            if emails is None:
                emails = await self._github.user_emails(oauth.access_token)
            return emails

        async def get_orgs() -> Sequence[str]:
            return await self._github.user_orgs(oauth.access_token)

        async def verified() -> Sequence[VerifiedEmail]:
            return [VerifiedEmail(e.email, e.verified) for e in await get_emails()]

        rule = await self.admission.check(gh_user.login, get_orgs, verified)
        known = await self._store.identities.find(PROVIDER, str(gh_user.id))
        if emails is None and known is None:  # only a new user's profile needs them
            emails = await self._optional_emails(oauth.access_token)
        signed = await self._store.identities.sign_in(
            provider=PROVIDER,
            subject=str(gh_user.id),
            login=gh_user.login,
            avatar_url=gh_user.avatar_url,
            tokens=stored(oauth),
            new_user=self._new_user(gh_user, emails or []),
            make_admin=self.admission.is_admin(gh_user.login),
        )
        user_id = signed.user.id
        await self._store.users.delete_expired_tokens(user_id)
        expires_at = utcnow() + ttl if ttl is not None else None
        token = await self._store.users.create_token(
            user_id, name, kind=kind, expires_at=expires_at
        )
        log.info(
            "@%s signed in (%s, admitted by %s%s)",
            gh_user.login,
            kind,
            rule,
            ", new user" if signed.created else "",
        )
        return SignInResult(signed.user, signed.identity, token, signed.created)

    async def _optional_emails(self, user_token: str) -> list[UserEmail]:
        """The user's emails when admission did not need them: a nicety for the profile, so a
        token without the email permission is not an error."""
        try:
            return await self._github.user_emails(user_token)
        except ScmError as exc:
            log.info("could not read the emails of a GitHub user: %s", exc.message)
            return []

    def _new_user(self, gh_user: ScmUser, emails: Sequence[UserEmail]) -> NewUser:
        name = (gh_user.name or "").strip() or gh_user.login
        noreply = noreply_email(gh_user.id, gh_user.login, self._settings.github.web_url)
        primary = next((e.email for e in emails if e.primary and e.verified), None)
        return NewUser(
            name=name,
            email=primary or gh_user.email or noreply,
            git_name=name,
            git_email=noreply,
            role="member",
        )
