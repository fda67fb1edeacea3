"""Everything about people the app holds for its lifetime, built once in the lifespan."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openinspect.errors import NotConfigured
from openinspect.people.admission import Admission
from openinspect.people.links import LoginLinks
from openinspect.people.oauth_state import OAuthState
from openinspect.people.roles import SessionRepoPolicy
from openinspect.people.signin import GitHubSignIn
from openinspect.scm.access import AccessChecker
from openinspect.scm.user_tokens import UserTokens
from openinspect.settings import Settings
from openinspect.store import Store

if TYPE_CHECKING:
    from openinspect.scm.github import GitHub

log = logging.getLogger(__name__)
_OAUTH_HINT = (
    "Set OPENINSPECT_GITHUB__CLIENT_ID and OPENINSPECT_GITHUB__CLIENT_SECRET (the GitHub App's "
    "OAuth credentials) and restart the server"
)


@dataclass
class People:
    settings: Settings
    admission: Admission
    oauth_state: OAuthState
    repo_policy: SessionRepoPolicy
    github: GitHub | None
    """The one GitHub client of the app; None when neither the App nor OAuth is configured."""
    user_tokens: UserTokens | None
    access: AccessChecker | None
    _signin: GitHubSignIn | None
    links: LoginLinks
    """Sign-in links minted by admins, and pasted tokens exchanged for browser sign-ins."""

    @classmethod
    def open(cls, settings: Settings, store: Store, secret: bytes) -> People:
        """Build from settings. Raises ``ConfigError`` for contradictory auth settings."""
        gh = settings.github
        admission = Admission(settings.auth)
        github = None
        if gh.oauth_configured or gh.app_configured:
            # Imported here: githubkit costs ~300 ms, which a server without GitHub never pays.
            from openinspect.scm.github import GitHub

            github = GitHub(gh)
        user_tokens = UserTokens(store, github) if github is not None else None
        access = None
        signin = None
        if github is not None and user_tokens is not None and gh.oauth_configured:
            access = AccessChecker(github, user_tokens, store, gh.access_cache_ttl_s)
            signin = GitHubSignIn(settings, store, github, admission)
            admission.warn_if_closed()
        if gh.access_check and access is None and gh.app_configured:
            log.warning(
                "The GitHub App is configured but GitHub sign-in is not: members are refused "
                "GitHub repos (their access cannot be checked) and admins are not checked"
            )
        policy = SessionRepoPolicy(gh.web_url, access, gh.access_check)
        return cls(
            settings,
            admission,
            OAuthState(secret),
            policy,
            github,
            user_tokens,
            access,
            signin,
            LoginLinks(settings.auth, store),
        )

    @property
    def signin_enabled(self) -> bool:
        return self._signin is not None

    @property
    def signin(self) -> GitHubSignIn:
        """The GitHub sign-in; ``NotConfigured`` (404) naming the settings when it is off."""
        if self._signin is None:
            raise NotConfigured("Sign in with GitHub is not configured", hint=_OAUTH_HINT)
        return self._signin

    async def aclose(self) -> None:
        if self.github is not None:
            await self.github.aclose()
