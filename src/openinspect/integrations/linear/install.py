"""Installing the agent in a Linear workspace: OAuth 2 with the app actor (``actor=app``), so
the app acts as its own user there (it can be delegated issues and mentioned).

1. An admin asks for the install (``GET /integrations/linear/install``): :meth:`start` returns
   Linear's authorize URL with the scopes (``linear.scopes``) and a ``state`` — signed with the
   server secret, expiring in :data:`STATE_TTL_S`, naming the admin and a random nonce.
2. Linear sends the browser back to ``/integrations/linear/callback`` with ``code`` and the
   ``state``. :meth:`complete` checks the state (signature, expiry, and **once**: its nonce is
   claimed in ``webhook_deliveries``, so a replayed callback fails), exchanges the code for the
   tokens, reads ``viewer`` (the app user and its workspace) and keeps the tokens sealed in
   ``linear_installs``, keyed by the workspace. Installing again replaces the tokens.

No token is logged, answered or put in an error; what the install answers is the workspace.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from openinspect.domain.models import User
from openinspect.errors import AuthError, InstallDenied, InstallStateInvalid
from openinspect.integrations.linear.client import LinearClient
from openinspect.people.oauth_state import SignedClaims
from openinspect.settings import LinearSettings
from openinspect.store import Store
from openinspect.store.linear import InstallInfo

log = logging.getLogger(__name__)
STATE_TTL_S = 600
CALLBACK_PATH = "/integrations/linear/callback"
CLAIM_PROVIDER = "linear-install"
_CONTEXT = b"openinspect/linear-install-state/v1\x00"
_AGAIN = "Start the install again from this server (as an admin)"


@dataclass(frozen=True)
class InstallStart:
    url: str
    """Linear's authorize page, for the admin's browser."""
    expires_at: int


class LinearInstaller:
    def __init__(
        self, settings: LinearSettings, store: Store, client: LinearClient, secret: bytes
    ) -> None:
        self._settings = settings
        self._store = store
        self._client = client
        self._states = SignedClaims(secret, _CONTEXT)

    def start(self, admin: User, redirect_uri: str) -> InstallStart:
        expires = int(time.time()) + STATE_TTL_S
        state = self._states.seal({"n": secrets.token_urlsafe(18), "u": admin.id}, expires)
        query = urlencode(
            {
                "client_id": self._settings.client_id or "",
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": self._settings.scopes,
                "state": state,
                "actor": "app",
            }
        )
        return InstallStart(f"{self._settings.authorize_url}?{query}", expires)

    async def complete(
        self, *, code: str | None, state: str | None, error: str | None, redirect_uri: str
    ) -> InstallInfo:
        """Finish an install Linear sent back; raises ``InstallStateInvalid``,
        ``InstallDenied`` or a ``LinearError``."""
        try:
            claims = self._states.open(state)
        except AuthError as exc:
            raise InstallStateInvalid(f"Linear install: {exc.message}", hint=_AGAIN) from None
        nonce, admin_id = claims.get("n"), claims.get("u")
        if not isinstance(nonce, str) or not isinstance(admin_id, str):
            raise InstallStateInvalid("Linear install: the state is malformed", hint=_AGAIN)
        if not await self._store.webhooks.claim(CLAIM_PROVIDER, nonce, "install"):
            raise InstallStateInvalid("Linear install: this state was used already", hint=_AGAIN)
        if error or not code:
            raise InstallDenied(
                "The Linear install was not approved",
                hint="Start it again and approve the app on Linear's page",
            )
        tokens = await self._client.exchange_code(code, redirect_uri)
        viewer = await self._client.viewer(tokens.access_token)
        info = await self._store.linear.save_install(
            org_id=viewer.org_id,
            org_name=viewer.org_name,
            app_user_id=viewer.app_user_id,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_at=tokens.expires_at,
            scopes=tokens.scope,
            installed_by=admin_id,
        )
        log.info("linear: installed in workspace %s (%s)", info.org_id, info.org_name)
        return info
