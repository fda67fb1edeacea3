"""The fake Linear's workspace and everything the API, OAuth and webhooks share.

One re-entrant lock guards it all: GraphQL and OAuth run on the server's thread, the test drives
the fake from its own, and the delivery worker reads from a third. ``changed`` is notified on
every write, so waiters (``FakeLinear.wait_until``) wake as soon as an activity lands.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from openinspect.testing.linear.records import (
    Activity,
    AgentSession,
    ApiCall,
    Comment,
    Grant,
    Issue,
    Label,
    Organization,
    Project,
    StateType,
    Team,
    Token,
    User,
    WorkflowState,
)

T = TypeVar("T")

DEFAULT_STATES: tuple[tuple[str, StateType, str], ...] = (
    ("Backlog", "backlog", "#bec2c8"),
    ("Todo", "unstarted", "#e2e2e2"),
    ("In Progress", "started", "#f2c94c"),
    ("In Review", "started", "#0f783c"),
    ("Done", "completed", "#5e6ad2"),
    ("Canceled", "canceled", "#95a2b3"),
)
"""A new team's workflow (name, type, colour); positions follow the order."""
TEAM_KEY_RE = re.compile(r"^[A-Z][A-Z0-9]{0,6}$")
PRIORITY_LABELS = ("No priority", "Urgent", "High", "Medium", "Low")


def new_id() -> str:
    """A Linear-style id (a UUID v4)."""
    return str(uuid.uuid4())


def slugify(text: str, limit: int = 60) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "issue"


@dataclass(frozen=True)
class Identity:
    """Who the OAuth app is and the organization it is installed in by default."""

    org_id: str = "00000000-0000-4000-8000-000000000001"
    org_name: str = "Fake Org"
    url_key: str = "fake"
    app_user_id: str = "00000000-0000-4000-8000-0000000000a1"
    app_name: str = "openinspect"
    admin_user_id: str = "00000000-0000-4000-8000-0000000000b1"
    admin_name: str = "Ada Admin"
    admin_email: str = "ada@example.com"


@dataclass
class LinearState:
    identity: Identity
    lock: threading.RLock = field(default_factory=threading.RLock)
    changed: threading.Condition = field(init=False)
    orgs: dict[str, Organization] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    workflow_states: dict[str, WorkflowState] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    issues: dict[str, Issue] = field(default_factory=dict)
    comments: dict[str, Comment] = field(default_factory=dict)
    sessions: dict[str, AgentSession] = field(default_factory=dict)
    activities: dict[str, Activity] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    """Refresh token → the access token it was issued with."""
    grants: dict[str, Grant] = field(default_factory=dict)
    calls: list[ApiCall] = field(default_factory=list)
    sync_id: int = 0
    _last_now: float = 0.0

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)
        ident = self.identity
        self.add_org(
            ident.org_name,
            ident.url_key,
            org_id=ident.org_id,
            app_user_id=ident.app_user_id,
            app_name=ident.app_name,
        )
        self.add_user(ident.admin_name, ident.admin_email, user_id=ident.admin_user_id, admin=True)

    # ------------------------------------------------------------------ clock and ids

    def now(self) -> float:
        """Unix seconds, strictly increasing (so creation order survives equal clock reads)."""
        with self.lock:
            now = max(time.time(), self._last_now + 0.000001)
            self._last_now = now
            return now

    def next_sync_id(self) -> int:
        with self.lock:
            self.sync_id += 1
            return self.sync_id

    def touch(self) -> None:
        """Wake everyone waiting for a change (call with the lock held)."""
        self.changed.notify_all()

    def snapshot(self, fn: Callable[[], T]) -> T:
        """``fn()``'s result deep-copied under the lock."""
        with self.lock:
            return copy.deepcopy(fn())

    # ------------------------------------------------------------------ building the workspace

    def add_org(
        self,
        name: str,
        url_key: str,
        *,
        org_id: str | None = None,
        app_user_id: str | None = None,
        app_name: str | None = None,
    ) -> Organization:
        """An organization with the OAuth app's user in it."""
        with self.lock:
            org = Organization(
                id=org_id or new_id(),
                name=name,
                url_key=url_key,
                app_user_id=app_user_id or new_id(),
                created_at=self.now(),
            )
            self.orgs[org.id] = org
            app = app_name or self.identity.app_name
            self.users[org.app_user_id] = User(
                id=org.app_user_id,
                name=app,
                display_name=app,
                org_id=org.id,
                app=True,
                email=f"{org.app_user_id}@oauthapp.linear.app",
                created_at=org.created_at,
            )
            self.touch()
            return org

    def add_user(
        self,
        name: str,
        email: str,
        *,
        user_id: str | None = None,
        org_id: str | None = None,
        display_name: str | None = None,
        admin: bool = False,
    ) -> User:
        with self.lock:
            org = self.org_or_default(org_id)
            user = User(
                id=user_id or new_id(),
                name=name,
                email=email,
                org_id=org.id,
                display_name=display_name or name.split(" ")[0].lower(),
                admin=admin,
                created_at=self.now(),
            )
            self.users[user.id] = user
            self.touch()
            return user

    def add_team(
        self,
        key: str,
        name: str,
        *,
        team_id: str | None = None,
        org_id: str | None = None,
        states: Sequence[tuple[str, StateType, str]] = DEFAULT_STATES,
    ) -> Team:
        """A team with its workflow states (Linear's default workflow unless given)."""
        if not TEAM_KEY_RE.match(key):
            raise ValueError(
                f"expected a team key of 1-7 capitals and digits (e.g. ENG), got {key!r}"
            )
        with self.lock:
            org = self.org_or_default(org_id)
            if any(t.key == key and t.org_id == org.id for t in self.teams.values()):
                raise ValueError(f"the organization already has a team with the key {key!r}")
            team = Team(
                id=team_id or new_id(), key=key, name=name, org_id=org.id, created_at=self.now()
            )
            self.teams[team.id] = team
            for position, (state_name, kind, color) in enumerate(states):
                ws = WorkflowState(
                    id=new_id(),
                    name=state_name,
                    type=kind,
                    position=float(position),
                    color=color,
                    team_id=team.id,
                    created_at=self.now(),
                )
                self.workflow_states[ws.id] = ws
            self.touch()
            return team

    def add_project(
        self, name: str, *, project_id: str | None = None, org_id: str | None = None
    ) -> Project:
        with self.lock:
            org = self.org_or_default(org_id)
            project = Project(
                id=project_id or new_id(),
                name=name,
                org_id=org.id,
                slug_id=secrets.token_hex(6),
                created_at=self.now(),
            )
            self.projects[project.id] = project
            self.touch()
            return project

    def add_label(
        self,
        name: str,
        *,
        label_id: str | None = None,
        team_id: str | None = None,
        org_id: str | None = None,
    ) -> Label:
        with self.lock:
            org = self.org_or_default(org_id)
            label = Label(
                id=label_id or new_id(),
                name=name,
                org_id=org.id,
                team_id=team_id,
                created_at=self.now(),
            )
            self.labels[label.id] = label
            self.touch()
            return label

    def add_issue(
        self,
        team_id: str,
        title: str,
        *,
        description: str | None = None,
        project_id: str | None = None,
        label_ids: Sequence[str] = (),
        state_id: str | None = None,
        creator_id: str | None = None,
        assignee_id: str | None = None,
        priority: int = 0,
    ) -> Issue:
        """An issue numbered in its team (``ENG-1``, ``ENG-2``…), in the team's first
        ``unstarted`` state unless given."""
        with self.lock:
            team = self.teams[team_id]
            first = next(
                (s for s in self.team_states(team.id) if s.type == "unstarted"),
                self.team_states(team.id)[0],
            )
            team.issue_count += 1
            now = self.now()
            issue = Issue(
                id=new_id(),
                identifier=f"{team.key}-{team.issue_count}",
                number=team.issue_count,
                title=title,
                description=description,
                team_id=team.id,
                state_id=state_id or first.id,
                org_id=team.org_id,
                project_id=project_id,
                label_ids=list(label_ids),
                creator_id=creator_id,
                assignee_id=assignee_id,
                priority=priority,
                created_at=now,
                updated_at=now,
            )
            self.issues[issue.id] = issue
            self.touch()
            return issue

    # ------------------------------------------------------------------ lookups (lock held)

    def org_or_default(self, org_id: str | None) -> Organization:
        org = self.orgs.get(org_id or self.identity.org_id)
        if org is None:
            raise KeyError("no such organization in the fake Linear; add it with add_org")
        return org

    def team_states(self, team_id: str) -> list[WorkflowState]:
        states = [s for s in self.workflow_states.values() if s.team_id == team_id]
        return sorted(states, key=lambda s: s.position)

    def find_issue(self, ref: str, org_id: str | None = None) -> Issue | None:
        """By id or identifier (``ENG-12``), as Linear's ``issue(id:)`` accepts both."""
        issue = self.issues.get(ref) or next(
            (i for i in self.issues.values() if i.identifier == ref.upper()), None
        )
        if issue is None or (org_id is not None and issue.org_id != org_id):
            return None
        return issue

    def find_team(self, ref: str, org_id: str | None = None) -> Team | None:
        """By id or key."""
        team = self.teams.get(ref) or next(
            (t for t in self.teams.values() if t.key == ref and org_id in (None, t.org_id)), None
        )
        if team is None or (org_id is not None and team.org_id != org_id):
            return None
        return team

    def find_user(self, ref: str, org_id: str | None = None) -> User | None:
        """By id, email or name."""
        user = self.users.get(ref) or next(
            (
                u
                for u in self.users.values()
                if ref in (u.email, u.name, u.display_name) and org_id in (None, u.org_id)
            ),
            None,
        )
        if user is None or (org_id is not None and user.org_id != org_id):
            return None
        return user

    def priority_label(self, priority: int) -> str:
        return PRIORITY_LABELS[priority] if 0 <= priority < len(PRIORITY_LABELS) else "Unknown"

    def record_call(self, call: ApiCall) -> None:
        with self.lock:
            self.calls.append(call)
            self.touch()
