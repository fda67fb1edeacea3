"""Sign in with GitHub: the OAuth web flow and the device flow.

These endpoints live on the web host (``{web_url}/login/oauth/...``), not the REST API, so they
are called with httpx directly, asking for JSON. GitHub answers most OAuth errors with HTTP 200
and an ``error`` field; those are mapped here: the device flow's "not yet" answers become a
``DevicePoll`` status, everything else an ``ScmError`` subclass (or ``NotConfigured``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from openinspect.errors import NotConfigured, ScmAuthFailed, ScmError, SignInCodeInvalid
from openinspect.scm.base import DeviceCode, DevicePoll, OAuthToken
from openinspect.scm.github_errors import map_github_error, map_status
from openinspect.settings import GitHubSettings

log = logging.getLogger(__name__)

DEFAULT_OAUTH_SCOPES = ("read:user", "user:email", "read:org")
"""Asked of classic OAuth Apps; a GitHub App's user tokens ignore scopes and use its permissions."""
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_DEVICE_INTERVAL_S = 5.0

_OAUTH_HINT = "Set OPENINSPECT_GITHUB__CLIENT_ID and OPENINSPECT_GITHUB__CLIENT_SECRET"
_SIGN_IN_AGAIN = "Sign in to GitHub again"
_AUTH_ERRORS = {
    "incorrect_client_credentials": "the OAuth client id or secret is wrong",
    "bad_verification_code": "the sign-in code is wrong, used or expired",
    "bad_refresh_token": "the refresh token is wrong, used or expired",
    "incorrect_device_code": "the device code is not known",
    "unverified_user_email": "the user has no verified email address",
}
# Errors about a code the client handed us (not about our credentials or state): a 4xx.
_CLIENT_CODE_ERRORS = frozenset({"incorrect_device_code"})


class GitHubOAuth:
    """The OAuth client of the GitHub App (or of a classic OAuth App)."""

    def __init__(
        self,
        settings: GitHubSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._web_url = settings.web_url.rstrip("/")
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    def _credentials(self, *, secret: bool = True) -> dict[str, str]:
        settings = self._settings
        if settings.client_id is None or (secret and settings.client_secret is None):
            raise NotConfigured("GitHub sign-in is not configured", hint=_OAUTH_HINT)
        creds = {"client_id": settings.client_id}
        if secret and settings.client_secret is not None:
            creds["client_secret"] = settings.client_secret.get_secret_value()
        return creds

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=self._transport,
                timeout=self._settings.request_timeout_s,
                headers={"Accept": "application/json", "User-Agent": "openinspect"},
            )
        return self._http

    def authorize_url(
        self, state: str, redirect_uri: str, scopes: Sequence[str] = DEFAULT_OAUTH_SCOPES
    ) -> str:
        """Where to send the browser to sign in; GitHub comes back to ``redirect_uri`` with
        ``code`` and the same ``state``."""
        query = {
            "client_id": self._credentials(secret=False)["client_id"],
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": " ".join(scopes),
            "allow_signup": "false",
        }
        return f"{self._web_url}/login/oauth/authorize?{urlencode(query)}"

    async def _post(self, path: str, form: Mapping[str, str], doing: str) -> dict[str, Any]:
        url = f"{self._web_url}{path}"
        try:
            response = await self._client().post(url, data=dict(form))
        except httpx.HTTPError as exc:
            raise map_github_error(exc, doing, self._web_url) from exc
        if response.is_error:
            raise map_status(response, f"{doing} at {url}")
        try:
            data = response.json()
        except ValueError as exc:
            raise ScmError(
                f"GitHub answered {doing} with something that is not JSON "
                f"({response.headers.get('content-type', 'no content type')})",
                hint=f"Is OPENINSPECT_GITHUB__WEB_URL ({self._web_url}) the GitHub web host?",
            ) from exc
        if not isinstance(data, dict):
            raise ScmError(f"GitHub answered {doing} with a JSON {type(data).__name__}")
        return data

    def _raise_oauth_error(self, data: Mapping[str, Any], doing: str) -> None:
        error = str(data["error"])
        description = str(data.get("error_description") or _AUTH_ERRORS.get(error, error))
        message = f"GitHub refused {doing}: {description} ({error})"
        if error == "device_flow_disabled":
            raise NotConfigured(message, hint="Enable Device Flow in the GitHub App's settings")
        if error in _CLIENT_CODE_ERRORS:  # the client sent a code GitHub does not know: 4xx
            raise SignInCodeInvalid(message, hint="Start signing in again")
        if error == "incorrect_client_credentials":
            raise ScmAuthFailed(message, hint=_OAUTH_HINT + " to the App's OAuth credentials")
        if error in _AUTH_ERRORS:
            raise ScmAuthFailed(message, hint=_SIGN_IN_AGAIN)
        if error == "redirect_uri_mismatch":
            raise ScmError(
                message, hint="Add this server's callback URL to the App's callback URLs"
            )
        raise ScmError(message)

    def _token(self, data: Mapping[str, Any], doing: str) -> OAuthToken:
        if "error" in data:
            self._raise_oauth_error(data, doing)
        access_token = data.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise ScmError(f"GitHub answered {doing} without an access_token")
        now = datetime.now(UTC)
        scope = str(data.get("scope") or "")
        scopes = tuple(s for s in scope.replace(",", " ").split() if s)

        def later(key: str) -> datetime | None:
            value = data.get(key)
            return now + timedelta(seconds=int(value)) if isinstance(value, int | str) else None

        refresh = data.get("refresh_token")
        return OAuthToken(
            access_token=access_token,
            token_type=str(data.get("token_type") or "bearer"),
            scopes=scopes,
            expires_at=later("expires_in"),
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            refresh_expires_at=later("refresh_token_expires_in"),
        )

    async def exchange_code(self, code: str, redirect_uri: str) -> OAuthToken:
        """Trade the ``code`` GitHub sent to ``redirect_uri`` for the user's token."""
        doing = "the sign-in code exchange"
        form = {**self._credentials(), "code": code, "redirect_uri": redirect_uri}
        return self._token(await self._post("/login/oauth/access_token", form, doing), doing)

    async def refresh_user_token(self, refresh_token: str) -> OAuthToken:
        """A new token (and refresh token) for an expiring user token."""
        doing = "refreshing a user token"
        form = {
            **self._credentials(),
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }
        return self._token(await self._post("/login/oauth/access_token", form, doing), doing)

    async def start_device_flow(self, scopes: Sequence[str] = DEFAULT_OAUTH_SCOPES) -> DeviceCode:
        """Begin a device sign-in: show ``user_code`` at ``verification_uri``, then poll."""
        doing = "starting a device sign-in"
        form = {**self._credentials(secret=False), "scope": " ".join(scopes)}
        data = await self._post("/login/device/code", form, doing)
        if "error" in data:
            self._raise_oauth_error(data, doing)
        try:
            return DeviceCode(
                device_code=str(data["device_code"]),
                user_code=str(data["user_code"]),
                verification_uri=str(data["verification_uri"]),
                interval_s=float(data.get("interval", DEFAULT_DEVICE_INTERVAL_S)),
                expires_in_s=float(data["expires_in"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ScmError(f"GitHub answered {doing} without {exc}") from exc

    async def poll_device_flow(self, device_code: str) -> DevicePoll:
        """One poll: the token once the person approved, else why not (see ``DevicePoll``)."""
        doing = "polling a device sign-in"
        form = {
            **self._credentials(secret=False),
            "device_code": device_code,
            "grant_type": DEVICE_GRANT,
        }
        data = await self._post("/login/oauth/access_token", form, doing)
        error = data.get("error")
        if error == "authorization_pending":
            return DevicePoll("pending")
        if error == "slow_down":
            interval = data.get("interval")
            return DevicePoll(
                "slow_down", interval_s=float(interval) if interval is not None else None
            )
        if error == "expired_token":
            return DevicePoll("expired")
        if error == "access_denied":
            return DevicePoll("denied")
        return DevicePoll("ok", token=self._token(data, doing))

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
