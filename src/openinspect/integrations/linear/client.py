"""Linear's API, the part the agent uses: GraphQL at ``<api_url>/graphql`` and OAuth 2 tokens at
``<api_url>/oauth/token`` (httpx).

Every answer is mapped at this boundary to the ``LinearError`` tree (``errors.py``), with a
stable code and nothing of the request in it (a token never reaches a message):

- no answer, a timeout or a 5xx → ``LinearUnavailable``;
- HTTP 401, ``AUTHENTICATION_ERROR``, an OAuth ``invalid_grant``/``invalid_client`` →
  ``LinearAuthFailed`` (a caller with a refresh token refreshes once and tries again);
- HTTP 429 or ``RATELIMITED`` → ``LinearRateLimited`` (with the wait Linear asked for);
- any other GraphQL error → ``LinearError`` with Linear's ``linear_code`` and ``reason``:
  ``conflict`` (a create with an id that exists: Linear's "already exists"), ``not_found``
  (``Entity not found``), else ``refused``.

The documents are those of CONTRACT §3 (the fake Linear validates each against Linear's SDL).
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from openinspect.errors import LinearAuthFailed, LinearError, LinearRateLimited, LinearUnavailable
from openinspect.settings import LinearSettings

ANSWER_MAX_BYTES = 4 * 1024 * 1024
RATE_LIMIT_WAIT_S = 30.0
"""How long to wait after a 429 that says nothing of when to come back."""
_HINT = "Check that Linear is reachable and the app is installed"

ACTIVITY_CREATE = """
mutation AgentActivityCreate($input: AgentActivityCreateInput!) {
  agentActivityCreate(input: $input) { success agentActivity { id } } }
"""
SESSION_UPDATE = """
mutation AgentSessionUpdate($id: String!, $input: AgentSessionUpdateInput!) {
  agentSessionUpdate(id: $id, input: $input) { success } }
"""
ACTIVITY = "query AgentActivity($id: String!) { agentActivity(id: $id) { id } }"
ISSUE = """
query Issue($id: String!) { issue(id: $id) { id identifier title description url
  team { id key name } project { id name } labels { nodes { id name } } state { id type } } }
"""
USER = "query User($id: String!) { user(id: $id) { id name email } }"
VIEWER = "query Viewer { viewer { id name organization { id name urlKey } } }"
TEAM_STARTED_STATES = """
query TeamStartedStates($id: String!) { team(id: $id) {
  states(filter: { type: { eq: "started" } }) { nodes { id name position type } } } }
"""
ISSUE_UPDATE = """
mutation IssueUpdate($id: String!, $input: IssueUpdateInput!) {
  issueUpdate(id: $id, input: $input) { success } }
"""


@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint answered (in memory only)."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    scope: str

    def __repr__(self) -> str:
        return f"TokenSet(scope={self.scope!r}, expires_at={self.expires_at!r}, …)"


@dataclass(frozen=True)
class Viewer:
    """Who an app token acts as: the app's user in one workspace."""

    app_user_id: str
    name: str
    org_id: str
    org_name: str
    url_key: str


def _retry_after_s(response: httpx.Response) -> float:
    """Linear's ``X-RateLimit-Requests-Reset`` (epoch ms) or ``Retry-After``; a default else."""
    reset = response.headers.get("x-ratelimit-requests-reset", "")
    if reset.isdigit():
        return max(int(reset) / 1000 - time.time(), 0.0)
    after = response.headers.get("retry-after", "")
    if after.isdigit():
        return float(after)
    if after:
        when = email.utils.parsedate_to_datetime(after)
        if when is not None:
            return max((when - datetime.now(UTC)).total_seconds(), 0.0)
    return RATE_LIMIT_WAIT_S


def _graphql_error(operation: str, errors: list[Any], response: httpx.Response) -> LinearError:
    first: dict[str, Any] = errors[0] if errors and isinstance(errors[0], dict) else {}
    found = first.get("extensions")
    extensions: dict[str, Any] = found if isinstance(found, dict) else {}
    code = str(extensions.get("code") or "UNKNOWN")[:64]
    message = str(first.get("message") or "")
    presented = str(extensions.get("userPresentableMessage") or "")
    if code == "RATELIMITED":
        return LinearRateLimited(
            f"Linear rate-limited {operation}", retry_after_s=_retry_after_s(response)
        )
    if code == "AUTHENTICATION_ERROR":
        return LinearAuthFailed(f"Linear refused the token for {operation}", linear_code=code)
    reason = "refused"
    if "already exists" in presented or message.startswith("conflict on insert"):
        reason = "conflict"
    elif message.startswith("Entity not found"):
        reason = "not_found"
    return LinearError(
        f"Linear refused {operation} ({code})", hint=_HINT, linear_code=code, reason=reason
    )


class LinearClient:
    def __init__(
        self, settings: LinearSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=self._transport,
                timeout=self._settings.request_timeout_s,
                headers={"Accept": "application/json", "User-Agent": "openinspect"},
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _post(self, url: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client().post(url, **kwargs)
        except httpx.HTTPError as exc:
            raise LinearUnavailable(
                f"No answer from Linear for {what} ({type(exc).__name__})", hint=_HINT
            ) from None
        if response.status_code == 429:
            raise LinearRateLimited(
                f"Linear rate-limited {what}", retry_after_s=_retry_after_s(response)
            )
        if response.status_code >= 500:
            raise LinearUnavailable(
                f"Linear answered HTTP {response.status_code} for {what}", hint=_HINT
            )
        if len(response.content) > ANSWER_MAX_BYTES:
            raise LinearError(f"Linear's answer to {what} is too large", hint=_HINT)
        return response

    # --- GraphQL ---

    async def graphql(
        self, token: str, operation: str, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The ``data`` of one document (``operation`` is its name)."""
        response = await self._post(
            self._settings.graphql_url,
            operation,
            json={"query": query, "variables": variables or {}, "operationName": operation},
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code == 401:
            raise LinearAuthFailed(
                f"Linear refused the token for {operation}", linear_code="AUTHENTICATION_ERROR"
            )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise LinearError(
                f"Linear answered {operation} with HTTP {response.status_code} and no JSON",
                hint=_HINT,
            )
        errors = answer.get("errors")
        if isinstance(errors, list) and errors:
            raise _graphql_error(operation, errors, response)
        data = answer.get("data")
        if response.status_code != 200 or not isinstance(data, dict):
            raise LinearError(
                f"Linear answered {operation} with HTTP {response.status_code}", hint=_HINT
            )
        return data

    async def viewer(self, token: str) -> Viewer:
        found = (await self.graphql(token, "Viewer", VIEWER)).get("viewer") or {}
        org = found.get("organization") or {}
        try:
            return Viewer(
                app_user_id=str(found["id"]),
                name=str(found.get("name") or ""),
                org_id=str(org["id"]),
                org_name=str(org.get("name") or ""),
                url_key=str(org.get("urlKey") or ""),
            )
        except KeyError as exc:
            raise LinearError("Linear's viewer named no user or workspace", hint=_HINT) from exc

    async def issue(self, token: str, issue_id: str) -> dict[str, Any]:
        found = (await self.graphql(token, "Issue", ISSUE, {"id": issue_id})).get("issue")
        return found if isinstance(found, dict) else {}

    async def user(self, token: str, user_id: str) -> dict[str, Any]:
        found = (await self.graphql(token, "User", USER, {"id": user_id})).get("user")
        return found if isinstance(found, dict) else {}

    async def create_activity(self, token: str, activity: dict[str, Any]) -> str:
        """Post an agent activity (``AgentActivityCreateInput``); its id."""
        data = await self.graphql(
            token, "AgentActivityCreate", ACTIVITY_CREATE, {"input": activity}
        )
        made = (data.get("agentActivityCreate") or {}).get("agentActivity") or {}
        return str(made.get("id") or activity.get("id") or "")

    async def activity_exists(self, token: str, activity_id: str) -> bool:
        try:
            data = await self.graphql(token, "AgentActivity", ACTIVITY, {"id": activity_id})
        except LinearError as exc:
            if exc.details.get("reason") == "not_found":
                return False
            raise
        return bool((data.get("agentActivity") or {}).get("id"))

    async def update_session(
        self, token: str, agent_session_id: str, changes: dict[str, Any]
    ) -> None:
        await self.graphql(
            token, "AgentSessionUpdate", SESSION_UPDATE, {"id": agent_session_id, "input": changes}
        )

    async def started_states(self, token: str, team_id: str) -> list[dict[str, Any]]:
        data = await self.graphql(token, "TeamStartedStates", TEAM_STARTED_STATES, {"id": team_id})
        nodes = ((data.get("team") or {}).get("states") or {}).get("nodes") or []
        return [n for n in nodes if isinstance(n, dict)]

    async def update_issue(self, token: str, issue_id: str, changes: dict[str, Any]) -> bool:
        data = await self.graphql(
            token, "IssueUpdate", ISSUE_UPDATE, {"id": issue_id, "input": changes}
        )
        return bool((data.get("issueUpdate") or {}).get("success"))

    # --- OAuth ---

    async def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """The install's authorization code → the app's tokens."""
        return await self._token(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        )

    async def refresh(self, refresh_token: str) -> TokenSet:
        """A new pair for a refresh token (Linear rotates it: the old one stops working)."""
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def _token(self, form: dict[str, str]) -> TokenSet:
        settings = self._settings
        if settings.client_id is None or settings.client_secret is None:
            raise LinearAuthFailed(
                "The Linear OAuth client is not configured",
                hint="Set OPENINSPECT_LINEAR__CLIENT_ID and OPENINSPECT_LINEAR__CLIENT_SECRET",
            )
        form = {
            **form,
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
        }
        what = f"the token request ({form['grant_type']})"
        response = await self._post(settings.token_url, what, data=form)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise LinearError(f"Linear answered {what} with no JSON", hint=_HINT)
        if response.status_code != 200 or "access_token" not in answer:
            error = str(answer.get("error") or f"HTTP {response.status_code}")[:64]
            hint = (
                "Check OPENINSPECT_LINEAR__CLIENT_ID and OPENINSPECT_LINEAR__CLIENT_SECRET"
                if error == "invalid_client"
                else "Install the app again"
            )
            raise LinearAuthFailed(f"Linear refused {what} ({error})", hint=hint, linear_code=error)
        expires_in = answer.get("expires_in")
        expires_at = (
            datetime.now(UTC) + timedelta(seconds=float(expires_in))
            if isinstance(expires_in, int | float)
            else None
        )
        refresh = answer.get("refresh_token")
        return TokenSet(
            access_token=str(answer["access_token"]),
            refresh_token=str(refresh) if refresh else None,
            expires_at=expires_at,
            scope=str(answer.get("scope") or ""),
        )
