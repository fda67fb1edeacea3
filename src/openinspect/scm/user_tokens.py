"""A user's GitHub OAuth token, ready to use: read (decrypted) from the store and, when it has
expired or is about to, refreshed through GitHub and stored again.

GitHub Apps issue user tokens that expire after 8 hours with a refresh token (valid six months,
single-use: each refresh returns a new one). A refresh that GitHub refuses means the person must
sign in again: the stored tokens are forgotten and ``github_token`` returns None. Refreshes of one
user are serialised in this process, so two requests at once do not spend the same refresh token
twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import timedelta
from typing import Protocol

from openinspect.domain.events import utcnow
from openinspect.errors import ConfigError, ScmAuthFailed
from openinspect.scm.base import OAuthToken
from openinspect.store import Store
from openinspect.store.identities import UserOAuthTokens

log = logging.getLogger(__name__)
PROVIDER = "github"
REFRESH_MARGIN_S = 120


class Refresher(Protocol):
    async def refresh_user_token(self, refresh_token: str) -> OAuthToken: ...


def stored(token: OAuthToken) -> UserOAuthTokens:
    """An OAuth token as the identity store keeps it."""
    return UserOAuthTokens(
        access_token=token.access_token,
        expires_at=token.expires_at,
        refresh_token=token.refresh_token,
        scopes=",".join(token.scopes) or None,
    )


class UserTokens:
    def __init__(
        self, store: Store, github: Refresher, refresh_margin_s: float = REFRESH_MARGIN_S
    ) -> None:
        self._store = store
        self._github = github
        self._margin = timedelta(seconds=refresh_margin_s)
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def github_token(self, user_id: str) -> str | None:
        """A usable access token of the user, or None (no GitHub identity, never had a token,
        or the token is dead and could not be refreshed: the person must sign in again).
        Raises ``ScmError`` subclasses other than ``ScmAuthFailed`` (GitHub down, rate limit)."""
        async with self._locks[user_id]:
            try:
                tokens = await self._store.identities.tokens(user_id, PROVIDER)
            except ConfigError as exc:
                log.warning("forgetting the GitHub tokens of %s: %s", user_id, exc.message)
                await self.forget(user_id)
                return None
            if tokens is None:
                return None
            if tokens.expires_at is None or tokens.expires_at - self._margin > utcnow():
                return tokens.access_token
            if not tokens.refresh_token:
                return None
            try:
                fresh = await self._github.refresh_user_token(tokens.refresh_token)
            except ScmAuthFailed as exc:
                log.info("GitHub refused to refresh the token of %s: %s", user_id, exc.message)
                await self.forget(user_id)
                return None
            await self._store.identities.set_tokens(user_id, PROVIDER, stored(fresh))
            return fresh.access_token

    async def github_login(self, user_id: str) -> str | None:
        """The user's GitHub login, or None when they never signed in with GitHub."""
        identity = await self._store.identities.get(user_id, PROVIDER)
        return identity.login if identity else None

    async def forget(self, user_id: str) -> None:
        """Drop the user's stored tokens (GitHub refused them)."""
        await self._store.identities.set_tokens(user_id, PROVIDER, None)
