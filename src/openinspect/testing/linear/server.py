"""``FakeLinear``: a local Linear speaking Linear's wire protocols (GraphQL API, OAuth 2 with the
app actor, signed ``AgentSessionEvent`` webhooks), so the product's client runs unchanged::

    with FakeLinear(client_id="cid", client_secret="csecret") as linear:
        linear.webhook("http://127.0.0.1:8000/webhooks/linear", "whsecret")
        eng = linear.add_team("ENG", "Engineering")
        alice = linear.add_user("Alice", "alice@example.com")
        issue = linear.add_issue(eng.id, "Fix the login bug", creator=alice.id)
        session = linear.mention(issue.id, alice.id, "@openinspect please fix this")
        await linear.await_activity(session, "thought", timeout_s=10)
        token = linear.token()  # or the OAuth dance against linear.authorize_url

People act through the fake (``mention``, ``delegate``, ``prompt``, ``stop_session``); it sends
the app the webhooks Linear would, in the background, in order. The app acts through GraphQL;
tests read the result back (``session``, ``issue``, ``calls``, ``deliveries``).

What a client must be ready for (Linear's own behaviour, kept here):
- ``agentActivityCreate`` with an ``id`` it already has: HTTP 200, ``data: null``, one error
  ``conflict on insert of AgentActivity`` (``INPUT_ERROR``, ``userPresentableMessage``
  "Entity AgentActivity with id … already exists."). The id must be a UUID **v4**; derive a
  stable one from a key with ``uuid.UUID(bytes=hashlib.sha256(key).digest()[:16], version=4)``.
- ``agentActivity(id:)`` / ``issue(id:)`` for something absent: HTTP 200, ``data: null``,
  ``Entity not found: AgentActivity`` (``INPUT_ERROR``).
- No, a bad, an expired or a revoked token: HTTP 401 ``AUTHENTICATION_ERROR``; a document that
  does not match the schema: HTTP 400 ``GRAPHQL_VALIDATION_FAILED``.
- The token answer's ``scope`` is space-separated (``"read write app:assignable …"``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp

from openinspect.testing.background import STOP_TIMEOUT_S, BackgroundServer
from openinspect.testing.deliveries import DEFAULT_WAIT_S, ChangeWaits, DeliveryWaits
from openinspect.testing.linear import shapes
from openinspect.testing.linear.api import Failure, Failures, GraphQLApi
from openinspect.testing.linear.delivery import Deliverer, Policy, build, sign
from openinspect.testing.linear.mutations import append
from openinspect.testing.linear.oauth import DEFAULT_SCOPES, OAuth, OAuthApp, mint
from openinspect.testing.linear.records import (
    Activity,
    ActivityType,
    AgentSession,
    ApiCall,
    Comment,
    Delivery,
    Issue,
    Label,
    Organization,
    Project,
    StateType,
    Team,
    Token,
    User,
)
from openinspect.testing.linear.state import DEFAULT_STATES, Identity, LinearState, new_id

RAW_TIMEOUT_S = 10.0
STOP_BODY = "Stop"
"""What Linear shows as the body of a person's stop request."""

Raw = tuple[int, dict[str, str], bytes]
"""(status, headers, body) of one raw delivery."""


class FakeLinear(BackgroundServer, DeliveryWaits[Delivery], ChangeWaits):
    """The fake, served from a background thread (``start``/``stop``, ``with``, ``async with``)."""

    label = "fake-linear"
    deliverer: Deliverer

    def __init__(
        self,
        *,
        client_id: str = "fake-linear-client",
        client_secret: str = "fake-linear-secret",  # noqa: S107 - a fake's well-known test secret
        webhook_url: str | None = None,
        webhook_secret: str = "fake-linear-webhook-secret",  # noqa: S107
        redirect_uris: Sequence[str] | None = None,
        attempts: int = 3,
        retry_delay_s: float = 0.5,
        timeout_s: float = 5.0,
        identity: Identity | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.state = LinearState(identity or Identity())
        self.oauth_app = OAuthApp(client_id, client_secret, list(redirect_uris or []) or None)
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.webhook_id = new_id()
        self.policy = Policy(attempts=attempts, retry_delay_s=retry_delay_s, timeout_s=timeout_s)
        self.deliverer = Deliverer(lambda: self.webhook_url, self.policy)
        self.failures = Failures()
        self._api = GraphQLApi(self.state, self.failures)
        self._oauth = OAuth(self.state, self.oauth_app)
        self._app = self._build_app()

    # ------------------------------------------------------------------ lifecycle

    def _build_app(self) -> ASGIApp:
        from openinspect.testing.linear import control

        routes = [
            Route("/graphql", self._api.endpoint, methods=["POST"]),
            *self._oauth.routes(),
            *control.routes(self),
        ]
        return Starlette(routes=routes)

    def _asgi_app(self) -> ASGIApp:
        return self._app

    def _on_listen(self) -> None:
        self.deliverer.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop delivering and serving. Safe to call twice."""
        self.deliverer.stop()
        super().stop(timeout_s)

    # ------------------------------------------------------------------ where things are

    @property
    def changed(self) -> threading.Condition:
        """Notified whenever the state changes (``wait_until`` waits on it)."""
        return self.state.changed

    @property
    def api_url(self) -> str:
        """``http://HOST:PORT``: GraphQL at ``/graphql``, the token endpoint at ``/oauth/token``
        (what ``OPENINSPECT_LINEAR__API_URL`` takes)."""
        return self.base_url

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/oauth/authorize"

    @property
    def client_id(self) -> str:
        return self.oauth_app.client_id

    @property
    def client_secret(self) -> str:
        return self.oauth_app.client_secret

    @property
    def org(self) -> Organization:
        """The default organization."""
        return self.state.snapshot(lambda: self.state.orgs[self.state.identity.org_id])

    @property
    def app_user_id(self) -> str:
        """The OAuth app's user in the default organization (``appUserId`` of its sessions)."""
        return self.state.identity.app_user_id

    @property
    def admin_user_id(self) -> str:
        """The default organization's admin (who installs the app unless told otherwise)."""
        return self.state.identity.admin_user_id

    def settings_env(self) -> dict[str, str]:
        """The ``OPENINSPECT_LINEAR__*`` variables that point a server at this fake."""
        return {
            "OPENINSPECT_LINEAR__CLIENT_ID": self.client_id,
            "OPENINSPECT_LINEAR__CLIENT_SECRET": self.client_secret,
            "OPENINSPECT_LINEAR__WEBHOOK_SECRET": self.webhook_secret,
            "OPENINSPECT_LINEAR__API_URL": self.api_url,
            "OPENINSPECT_LINEAR__AUTHORIZE_URL": self.authorize_url,
        }

    # ------------------------------------------------------------------ the workspace

    def add_org(self, name: str, url_key: str, *, org_id: str | None = None) -> Organization:
        """Another organization (with the app's own user in it)."""
        return self.state.snapshot(lambda: self.state.add_org(name, url_key, org_id=org_id))

    def add_user(
        self,
        name: str,
        email: str,
        *,
        user_id: str | None = None,
        org_id: str | None = None,
        admin: bool = False,
    ) -> User:
        return self.state.snapshot(
            lambda: self.state.add_user(name, email, user_id=user_id, org_id=org_id, admin=admin)
        )

    def add_team(
        self,
        key: str,
        name: str,
        *,
        team_id: str | None = None,
        org_id: str | None = None,
        states: Sequence[tuple[str, StateType, str]] = DEFAULT_STATES,
    ) -> Team:
        """A team (key like ``ENG``) with Linear's default workflow states unless given
        (name, type, colour), positioned in order."""
        return self.state.snapshot(
            lambda: self.state.add_team(key, name, team_id=team_id, org_id=org_id, states=states)
        )

    def add_project(self, name: str, *, project_id: str | None = None) -> Project:
        return self.state.snapshot(lambda: self.state.add_project(name, project_id=project_id))

    def add_label(self, name: str, *, team_id: str | None = None) -> Label:
        return self.state.snapshot(lambda: self.state.add_label(name, team_id=team_id))

    def add_issue(
        self,
        team: str,
        title: str,
        *,
        description: str | None = None,
        project: str | None = None,
        labels: Sequence[str] = (),
        creator: str | None = None,
        assignee: str | None = None,
        priority: int = 0,
    ) -> Issue:
        """An issue in ``team`` (id or key); ``labels`` by id or name (made when new)."""
        state = self.state

        def make() -> Issue:
            found = state.find_team(team)
            if found is None:
                raise KeyError("no such team in the fake Linear; add it with add_team first")
            label_ids = [self._label_id(ref, found.id) for ref in labels]
            return state.add_issue(
                found.id,
                title,
                description=description,
                project_id=project,
                label_ids=label_ids,
                creator_id=creator,
                assignee_id=assignee,
                priority=priority,
            )

        return state.snapshot(make)

    def _label_id(self, ref: str, team_id: str) -> str:
        state = self.state
        if ref in state.labels:
            return ref
        found = next((lab for lab in state.labels.values() if lab.name == ref), None)
        return (found or state.add_label(ref, team_id=team_id)).id

    def issue(self, ref: str) -> Issue:
        """An issue by id or identifier (a copy), with every ``issueUpdate`` applied to it."""
        found = self.state.snapshot(lambda: self.state.find_issue(ref))
        if found is None:
            raise KeyError("no such issue in the fake Linear")
        return found

    def team_states(self, team: str) -> list[Any]:
        def states() -> list[Any]:
            found = self.state.find_team(team)
            return self.state.team_states(found.id) if found is not None else []

        return self.state.snapshot(states)

    # ------------------------------------------------------------------ tokens and OAuth

    def token(
        self,
        *,
        org_id: str | None = None,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        actor: Literal["app", "user"] = "app",
        user_id: str | None = None,
        ttl_s: float | None = None,
    ) -> str:
        """An access token without the OAuth dance: the app's (``viewer`` is the app user) or,
        with ``actor="user"``, a person's (``user_id``, default the admin)."""
        with self.state.lock:
            org = self.state.org_or_default(org_id)
            who = org.app_user_id if actor == "app" else (user_id or self.admin_user_id)
        token = mint(
            self.state,
            org_id=org.id,
            user_id=who,
            scopes=list(scopes),
            actor=actor,
            client_id=self.client_id,
            ttl_s=ttl_s or self.oauth_app.token_ttl_s,
            refresh=True,
        )
        return token.access_token

    def tokens(self) -> list[Token]:
        """Every token minted so far (copies)."""
        return self.state.snapshot(lambda: list(self.state.tokens.values()))

    def expire_token(self, access_token: str) -> None:
        """Make a token expired now (its refresh token still works)."""
        with self.state.lock:
            self.state.tokens[access_token].expires_at = time.time() - 1

    def revoke_token(self, access_token: str) -> None:
        with self.state.lock:
            self.state.tokens[access_token].revoked = True

    def refuse_next_authorize(self, times: int = 1) -> None:
        """The next ``times`` authorizes redirect back with ``error=access_denied``."""
        self.oauth_app.refuse.extend([True] * times)

    def set_installer(self, *, org_id: str | None = None, user_id: str | None = None) -> None:
        """Who approves the next authorizes (default: the default organization's admin)."""
        self.oauth_app.installer = (org_id, user_id)

    # ------------------------------------------------------------------ webhooks and sessions

    def webhook(self, url: str | None, secret: str | None = None) -> None:
        """Register where (and with which secret) the agent session webhooks go."""
        self.webhook_url = url
        if secret is not None:
            self.webhook_secret = secret

    def mention(self, issue: str, user: str, body: str | None = None) -> str:
        """``user`` mentions the app in a comment on ``issue``: a new agent session, and the
        ``created`` webhook (with the comment and ``promptContext``). Returns the session id."""
        text = body or f"@{self.state.identity.app_name} please take a look"
        return self._start(issue, user, text)

    def delegate(self, issue: str, user: str) -> str:
        """``user`` delegates ``issue`` to the app: a new agent session and the ``created``
        webhook (no comment; ``promptContext`` is the issue). Returns the session id."""
        return self._start(issue, user, None)

    def _start(self, issue_ref: str, user_ref: str, comment_body: str | None) -> str:
        state = self.state
        with state.lock:
            issue = state.find_issue(issue_ref)
            user = state.find_user(user_ref)
            if issue is None or user is None:
                raise KeyError("no such issue or user in the fake Linear (add them first)")
            org = state.orgs[issue.org_id]
            now = state.now()
            comment: Comment | None = None
            if comment_body is not None:
                comment = Comment(new_id(), comment_body, user.id, issue.id, now)
                state.comments[comment.id] = comment
            else:
                issue.delegate_id = org.app_user_id
            session = AgentSession(
                id=new_id(),
                org_id=org.id,
                app_user_id=org.app_user_id,
                creator_id=user.id,
                issue_id=issue.id,
                comment_id=comment.id if comment else None,
                created_at=now,
                updated_at=now,
            )
            state.sessions[session.id] = session
            state.touch()
            body = self._event(session, "created")
        self._send(body)
        return session.id

    def prompt(self, session_id: str, user: str, body: str) -> Delivery:
        """``user`` writes a follow-up in the session: a ``prompt`` activity and the
        ``prompted`` webhook."""
        return self._prompted(session_id, user, body, signal=None)

    def stop_session(self, session_id: str, user: str) -> Delivery:
        """``user`` asks the agent to stop: ``prompted`` with ``agentActivity.signal="stop"``
        (named so because ``stop`` stops the server)."""
        return self._prompted(session_id, user, STOP_BODY, signal="stop")

    def _prompted(self, session_id: str, user_ref: str, body: str, signal: str | None) -> Delivery:
        state = self.state
        with state.lock:
            session = state.sessions.get(session_id)
            user = state.find_user(user_ref)
            if session is None or user is None:
                raise KeyError("no such agent session or user in the fake Linear")
            activity = Activity(
                id=new_id(),
                session_id=session.id,
                user_id=user.id,
                content={"type": "prompt", "body": body},
                created_at=state.now(),
                signal=signal,
            )
            append(state, session, activity)
            event = self._event(session, "prompted", activity)
        return self._send(event)

    def _event(
        self, session: AgentSession, action: str, activity: Activity | None = None
    ) -> dict[str, Any]:
        return shapes.event(
            self.state,
            session,
            action,
            webhook_id=self.webhook_id,
            client_id=self.client_id,
            activity=activity,
        )

    def _send(self, body: dict[str, Any]) -> Delivery:
        return self.deliverer.put(build(body, self.webhook_secret, event=shapes.EVENT))

    def replay(self, delivery_id: str) -> Delivery:
        """Send a delivery again, byte for byte (same ``Linear-Delivery``, body and signature),
        as a retry or a replay attack would."""
        original = self.deliverer.find(delivery_id)
        if original is None:
            raise KeyError("no such delivery")
        again = Delivery(
            id=original.id,
            event=original.event,
            action=original.action,
            body=original.body,
            raw=original.raw,
            headers=dict(original.headers),
            replay_of=original.id,
        )
        return self.deliverer.put(again)

    def send_raw(self, body: dict[str, Any] | bytes, **options: Any) -> Raw:
        """One POST to the webhook URL from this thread, optionally forged (the options of
        ``_raw_request``: another ``secret``, a given ``signature`` (``""`` sends none), an old
        ``timestamp_ms`` set in the body before signing, a ``delivery_id``, an ``event``).
        Returns (status, headers, body)."""
        url, raw, headers = self._raw_request(body, **options)
        with httpx.Client(trust_env=False, timeout=RAW_TIMEOUT_S) as http:
            response = http.post(url, content=raw, headers=headers)
        return response.status_code, dict(response.headers), response.content

    async def asend_raw(self, body: dict[str, Any] | bytes, **options: Any) -> Raw:
        """``send_raw`` (the same options) for a receiver on the caller's own loop."""
        url, raw, headers = self._raw_request(body, **options)
        async with httpx.AsyncClient(trust_env=False, timeout=RAW_TIMEOUT_S) as http:
            response = await http.post(url, content=raw, headers=headers)
        return response.status_code, dict(response.headers), response.content

    def _raw_request(
        self,
        body: dict[str, Any] | bytes,
        *,
        secret: str | None = None,
        signature: str | None = None,
        timestamp_ms: int | None = None,
        delivery_id: str | None = None,
        event: str = shapes.EVENT,
    ) -> tuple[str, bytes, dict[str, str]]:
        if self.webhook_url is None:
            raise RuntimeError("register the webhook (linear.webhook(url, secret)) before sending")
        if isinstance(body, dict):
            body = dict(body)
            if timestamp_ms is not None:
                body["webhookTimestamp"] = timestamp_ms
            record = build(
                body,
                secret or self.webhook_secret,
                event=event,
                delivery_id=delivery_id,
                signature=signature,
            )
            raw, headers = record.raw, record.headers
        else:
            raw = body
            headers = build({}, "", event=event, delivery_id=delivery_id).headers
            headers["Linear-Signature"] = (
                signature if signature is not None else sign(secret or self.webhook_secret, raw)
            )
        if headers.get("Linear-Signature") == "":
            del headers["Linear-Signature"]
        return self.webhook_url, raw, headers

    def event_body(self, session_id: str, action: str = "created") -> dict[str, Any]:
        """A fresh ``AgentSessionEvent`` body for a session (for ``send_raw``)."""
        with self.state.lock:
            session = self.state.sessions[session_id]
            return self._event(session, action)

    # ------------------------------------------------------------------ deliveries

    def deliveries_for(self, session_id: str) -> list[Delivery]:
        """The deliveries about one agent session, in order (replays included)."""
        return [d for d in self.deliverer.records() if d.agent_session_id == session_id]

    # ------------------------------------------------------------------ failures

    def fail_next(
        self,
        field: str,
        *,
        status: int = 500,
        code: str | None = None,
        message: str | None = None,
        apply: bool = False,
        times: int = 1,
    ) -> None:
        """The next ``times`` documents asking for the top-level ``field`` (e.g.
        ``agentActivityCreate``) get HTTP ``status`` with one error: ``RATELIMITED`` for 429,
        else ``INTERNAL_SERVER_ERROR``. With ``apply=True`` the document runs first and its
        answer is lost (the write happened; the client does not know)."""
        code = code or ("RATELIMITED" if status == 429 else "INTERNAL_SERVER_ERROR")
        text = message or ("Rate limit exceeded" if status == 429 else "Internal server error")
        self.failures.add(field, Failure(status, code, text, apply), times)

    # ------------------------------------------------------------------ inspection

    def session(self, session_id: str) -> AgentSession:
        """An agent session (a copy): ``activities`` in order with ``created_at``,
        ``external_links``, ``plan``, ``status`` (derived from the last activity)."""
        found = self.state.snapshot(lambda: self.state.sessions.get(session_id))
        if found is None:
            raise KeyError("no such agent session in the fake Linear")
        return found

    def sessions(self) -> list[AgentSession]:
        return self.state.snapshot(lambda: list(self.state.sessions.values()))

    def calls(self, field: str | None = None) -> list[ApiCall]:
        """GraphQL requests answered so far (``field`` filters on a top-level field)."""
        with self.state.lock:
            return [c for c in self.state.calls if field is None or field in c.fields]

    def wait_for_activity(
        self, session_id: str, kind: ActivityType, timeout_s: float = DEFAULT_WAIT_S
    ) -> Activity:
        """Until the session has an activity of ``kind``; returns the first such one."""
        self.wait_until(lambda f: bool(f._activities(session_id, kind)), timeout_s)
        return self._activities(session_id, kind)[0]

    async def await_activity(
        self, session_id: str, kind: ActivityType, timeout_s: float = DEFAULT_WAIT_S
    ) -> Activity:
        return await asyncio.to_thread(self.wait_for_activity, session_id, kind, timeout_s)

    def _activities(self, session_id: str, kind: ActivityType) -> list[Activity]:
        def found() -> list[Activity]:
            session = self.state.sessions.get(session_id)
            return session.of_type(kind) if session is not None else []

        return self.state.snapshot(found)
