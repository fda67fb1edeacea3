"""The read side of the GraphQL API: records turned into what the schema's types resolve from,
and the ``Query`` fields.

A view is a dict keyed by the schema's field names; graphql-core's default resolver reads a key
and, when the value is callable, calls it with the field's arguments, so nested objects and
connections are only built when a document asks for them. Everything runs with the state's
lock held (``api`` executes a whole document under it), so a document sees one moment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from graphql import GraphQLResolveInfo

from openinspect.testing.linear.errors import invalid, not_found
from openinspect.testing.linear.records import (
    Activity,
    AgentSession,
    Issue,
    Label,
    Organization,
    Project,
    Team,
    Token,
    User,
    WorkflowState,
)
from openinspect.testing.linear.state import LinearState, slugify

R = TypeVar("R")
View = dict[str, Any]
MAX_PAGE = 250
"""Linear's largest page (``first``/``last``)."""


@dataclass
class Ctx:
    """The GraphQL context: who is asking."""

    state: LinearState
    token: Token

    @property
    def org(self) -> Organization:
        return self.state.orgs[self.token.org_id]


def iso(ts: float | None) -> str | None:
    """``2026-01-02T03:04:05.678Z``, as Linear writes DateTime."""
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _times(created_at: float, updated_at: float | None = None) -> View:
    return {
        "createdAt": iso(created_at),
        "updatedAt": iso(updated_at or created_at),
        "archivedAt": None,
    }


def connection(
    items: Sequence[R],
    view: Callable[[R], View],
    *,
    first: int | None = None,
    last: int | None = None,
    order_by: str | None = None,
    **_unused: Any,
) -> View:
    """A Relay connection (``nodes``, ``edges``, ``pageInfo``) over ``items``, oldest first."""
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE:
            raise invalid(f"{name} must be between 0 and {MAX_PAGE}.")
    key = "updated_at" if order_by == "updatedAt" else "created_at"

    def stamp(item: R) -> float:
        value: Any = getattr(item, key, None) or getattr(item, "created_at", 0.0)
        return float(value)

    ordered = sorted(items, key=stamp)
    page = ordered
    if first is not None:
        page = page[:first]
    if last is not None:
        page = page[-last:] if last else []
    views = [view(item) for item in page]
    return {
        "nodes": views,
        "edges": [{"cursor": v["id"], "node": v} for v in views],
        "pageInfo": {
            "hasNextPage": len(page) < len(ordered) and first is not None,
            "hasPreviousPage": len(page) < len(ordered) and last is not None,
            "startCursor": views[0]["id"] if views else None,
            "endCursor": views[-1]["id"] if views else None,
        },
    }


# ---------------------------------------------------------------------- filters


def _compare(op: str, value: Any, arg: Any) -> bool:
    """One comparator operator (``eq``, ``in``, ``containsIgnoreCase``…) of a Linear filter."""
    if op in ("eq", "neq", "in", "nin"):
        hit = value == arg if op in ("eq", "neq") else value in arg
        return hit if op in ("eq", "in") else not hit
    if op in ("gt", "gte", "lt", "lte"):
        if op == "gt":
            return bool(value > arg)
        if op == "gte":
            return bool(value >= arg)
        return bool(value < arg) if op == "lt" else bool(value <= arg)
    text, needle = str(value), str(arg)
    if op == "eqIgnoreCase":
        return text.lower() == needle.lower()
    if op == "containsIgnoreCase":
        return needle.lower() in text.lower()
    if op == "contains":
        return needle in text
    return text.startswith(needle) if op == "startsWith" else text.endswith(needle)


def _matches(value: Any, comparator: dict[str, Any]) -> bool:
    return all(_compare(op, value, arg) for op, arg in comparator.items() if arg is not None)


def state_filter(ws: WorkflowState, spec: dict[str, Any] | None) -> bool:
    """``WorkflowStateFilter``: every given field must match; ``and``/``or`` nest."""
    if not spec:
        return True
    fields = {"id": ws.id, "name": ws.name, "type": ws.type, "position": ws.position}
    for name, comparator in spec.items():
        if comparator is None:
            continue
        if name == "and" and not all(state_filter(ws, s) for s in comparator):
            return False
        if name == "or" and not any(state_filter(ws, s) for s in comparator):
            return False
        if name in fields and not _matches(fields[name], comparator):
            return False
    return True


# ---------------------------------------------------------------------- views


def org_view(ctx: Ctx, org: Organization) -> View:
    return {"id": org.id, "name": org.name, "urlKey": org.url_key, **_times(org.created_at)}


def user_view(ctx: Ctx, user: User) -> View:
    org = ctx.state.orgs[user.org_id]
    return {
        "id": user.id,
        "name": user.name,
        "displayName": user.display_name,
        "email": user.email,
        "active": True,
        "admin": user.admin,
        "app": user.app,
        "guest": False,
        "avatarUrl": None,
        "isMe": user.id == ctx.token.user_id,
        "url": f"https://linear.app/{org.url_key}/profiles/{user.display_name}",
        "organization": lambda _info: org_view(ctx, org),
        **_times(user.created_at),
    }


def team_view(ctx: Ctx, team: Team) -> View:
    def states(_info: GraphQLResolveInfo[Ctx], **args: Any) -> View:
        spec = args.pop("filter", None)
        chosen = [s for s in ctx.state.team_states(team.id) if state_filter(s, spec)]
        return connection(chosen, lambda s: state_view(ctx, s), **_page(args))

    return {
        "id": team.id,
        "key": team.key,
        "name": team.name,
        "displayName": team.name,
        "description": None,
        "private": False,
        "organization": lambda _info: org_view(ctx, ctx.state.orgs[team.org_id]),
        "states": states,
        **_times(team.created_at),
    }


def _page(args: dict[str, Any]) -> dict[str, Any]:
    """The schema's camelCase paging arguments as ``connection``'s keywords."""
    return {"first": args.get("first"), "last": args.get("last"), "order_by": args.get("orderBy")}


def state_view(ctx: Ctx, ws: WorkflowState) -> View:
    return {
        "id": ws.id,
        "name": ws.name,
        "type": ws.type,
        "position": ws.position,
        "color": ws.color,
        "description": None,
        "team": lambda _info: team_view(ctx, ctx.state.teams[ws.team_id]),
        **_times(ws.created_at),
    }


def project_view(ctx: Ctx, project: Project) -> View:
    org = ctx.state.orgs[project.org_id]
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "slugId": project.slug_id,
        "url": f"https://linear.app/{org.url_key}/project/{slugify(project.name)}-{project.slug_id}",
        **_times(project.created_at),
    }


def label_view(ctx: Ctx, label: Label) -> View:
    team = ctx.state.teams.get(label.team_id or "")
    return {
        "id": label.id,
        "name": label.name,
        "color": label.color,
        "description": None,
        "isGroup": False,
        "team": lambda _info: team_view(ctx, team) if team is not None else None,
        **_times(label.created_at),
    }


def issue_url(state: LinearState, issue: Issue) -> str:
    org = state.orgs[issue.org_id]
    return f"https://linear.app/{org.url_key}/issue/{issue.identifier}/{slugify(issue.title)}"


def issue_view(ctx: Ctx, issue: Issue) -> View:
    state = ctx.state

    def person(user_id: str | None) -> Callable[[GraphQLResolveInfo[Ctx]], View | None]:
        user = state.users.get(user_id or "")
        return lambda _info: user_view(ctx, user) if user is not None else None

    def labels(_info: GraphQLResolveInfo[Ctx], **page: Any) -> View:
        chosen = [state.labels[i] for i in issue.label_ids if i in state.labels]
        return connection(chosen, lambda lab: label_view(ctx, lab), **_page(page))

    project = state.projects.get(issue.project_id or "")
    return {
        "id": issue.id,
        "identifier": issue.identifier,
        "number": float(issue.number),
        "title": issue.title,
        "description": issue.description,
        "url": issue_url(state, issue),
        "branchName": f"{issue.identifier.lower()}-{slugify(issue.title, 40)}",
        "priority": float(issue.priority),
        "priorityLabel": state.priority_label(issue.priority),
        "labelIds": list(issue.label_ids),
        "labels": labels,
        "startedAt": iso(issue.started_at),
        "team": lambda _info: team_view(ctx, state.teams[issue.team_id]),
        "state": lambda _info: state_view(ctx, state.workflow_states[issue.state_id]),
        "project": lambda _info: project_view(ctx, project) if project is not None else None,
        "assignee": person(issue.assignee_id),
        "delegate": person(issue.delegate_id),
        "creator": person(issue.creator_id),
        **_times(issue.created_at, issue.updated_at),
    }


def activity_view(ctx: Ctx, activity: Activity) -> View:
    state = ctx.state
    return {
        "id": activity.id,
        "content": dict(activity.content),
        "ephemeral": activity.ephemeral,
        "signal": activity.signal,
        "signalMetadata": activity.signal_metadata,
        "contextualMetadata": activity.contextual_metadata,
        "sourceMetadata": None,
        "user": lambda _info: user_view(ctx, state.users[activity.user_id]),
        "agentSession": lambda _info: session_view(ctx, state.sessions[activity.session_id]),
        **_times(activity.created_at),
    }


def session_url(state: LinearState, session: AgentSession) -> str:
    org = state.orgs[session.org_id]
    return f"https://linear.app/{org.url_key}/agent-session/{session.id}"


def session_view(ctx: Ctx, session: AgentSession) -> View:
    state = ctx.state
    links = [{"label": link.label, "url": link.url} for link in session.external_links]
    issue = state.issues.get(session.issue_id or "")
    creator = state.users.get(session.creator_id or "")

    def activities(_info: GraphQLResolveInfo[Ctx], **page: Any) -> View:
        shown = session.visible_activities
        return connection(shown, lambda a: activity_view(ctx, a), **_page(page))

    return {
        "id": session.id,
        "status": session.status,
        "activities": activities,
        "appUser": lambda _info: user_view(ctx, state.users[session.app_user_id]),
        "creator": lambda _info: user_view(ctx, creator) if creator is not None else None,
        "issue": lambda _info: issue_view(ctx, issue) if issue is not None else None,
        "externalLinks": links,
        "externalUrls": links,
        "externalLink": session.external_link,
        "plan": session.plan,
        "summary": None,
        "url": session_url(state, session),
        "startedAt": iso(session.started_at),
        "endedAt": iso(session.ended_at),
        "dismissedAt": session.dismissed_at,
        **_times(session.created_at, session.updated_at),
    }


# ---------------------------------------------------------------------- Query

T = TypeVar("T")


def _lookup(
    entity: str, find: Callable[[Ctx, str], T | None], view: Callable[[Ctx, T], View]
) -> Callable[..., View]:
    """A ``Query`` field taking ``id``: the entity seen from the token's organization, or
    Linear's ``Entity not found: <entity>``."""

    def resolve(_root: None, info: GraphQLResolveInfo[Ctx], id: str) -> View:  # noqa: A002
        ctx = info.context
        found = find(ctx, id)
        if found is None:
            raise not_found(entity)
        return view(ctx, found)

    return resolve


def _in_org(ctx: Ctx, org_id: str | None, found: T | None) -> T | None:
    return found if org_id == ctx.token.org_id else None


def _workflow_state(ctx: Ctx, ref: str) -> WorkflowState | None:
    ws = ctx.state.workflow_states.get(ref)
    return _in_org(ctx, ctx.state.teams[ws.team_id].org_id if ws else None, ws)


def _session(ctx: Ctx, ref: str) -> AgentSession | None:
    session = ctx.state.sessions.get(ref)
    return _in_org(ctx, session.org_id if session else None, session)


def _activity(ctx: Ctx, ref: str) -> Activity | None:
    activity = ctx.state.activities.get(ref)
    session = ctx.state.sessions[activity.session_id] if activity else None
    return _in_org(ctx, session.org_id if session else None, activity)


QUERY: dict[str, Callable[..., View]] = {
    "viewer": lambda _root, info: user_view(
        info.context, info.context.state.users[info.context.token.user_id]
    ),
    "organization": lambda _root, info: org_view(info.context, info.context.org),
    "user": _lookup("User", lambda c, ref: c.state.find_user(ref, c.token.org_id), user_view),
    "issue": _lookup("Issue", lambda c, ref: c.state.find_issue(ref, c.token.org_id), issue_view),
    "team": _lookup("Team", lambda c, ref: c.state.find_team(ref, c.token.org_id), team_view),
    "workflowState": _lookup("WorkflowState", _workflow_state, state_view),
    "agentSession": _lookup("AgentSession", _session, session_view),
    "agentActivity": _lookup("AgentActivity", _activity, activity_view),
}
