"""The write side of the GraphQL API: ``agentActivityCreate``, ``agentSessionUpdate`` and
``issueUpdate``, with the checks Linear makes that the schema cannot (``content`` is a bare
``JSONObject`` there).

- ``agentActivityCreate`` only appends (nothing is merged upstream). ``content.type`` is one of
  the agent's types (``thought``, ``action``, ``elicitation``, ``response``, ``error``);
  ``action`` needs ``action`` and ``parameter``, the others a ``body``. Only ``thought`` and
  ``action`` may be ``ephemeral`` (an ephemeral activity is hidden once another follows). A
  client ``id`` must be a UUID v4 (the SDL says so); the same id twice is Linear's
  ``conflict on insert of AgentActivity`` error and appends nothing.
- ``agentSessionUpdate``: ``externalUrls`` replaces the links (``addedExternalUrls`` and
  ``removedExternalUrls`` are then ignored, as Linear documents); ``plan`` replaces the whole
  plan, a list of ``{content, status}`` steps.
- Only the session's own app (a token of its app user) may write to an agent session; anyone
  else gets ``Entity not found: AgentSession``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from graphql import GraphQLResolveInfo

from openinspect.testing.linear.errors import already_exists, forbidden, invalid, not_found
from openinspect.testing.linear.records import Activity, AgentSession, ExternalLink, Issue
from openinspect.testing.linear.state import LinearState
from openinspect.testing.linear.views import Ctx, View, activity_view, issue_view, session_view

AGENT_TYPES = ("thought", "action", "elicitation", "response", "error")
EPHEMERAL_TYPES = ("thought", "action")
PLAN_STATUSES = ("pending", "inProgress", "completed", "canceled")
MAX_TEXT_CHARS = 100_000
"""The fake's cap on one activity text (Linear documents none)."""
MAX_JSON_CHARS = 64 * 1024
MAX_LINKS = 20
MAX_PLAN_STEPS = 100
MAX_URL_CHARS = 2048


def _ctx(info: GraphQLResolveInfo[Ctx]) -> Ctx:
    ctx = info.context
    if "write" not in ctx.token.scopes:
        raise forbidden("write")
    return ctx


def _payload(ctx: Ctx, name: str, view: View) -> View:
    """A mutation's ``…Payload``: ``success``, ``lastSyncId`` and the entity."""
    return {"success": True, "lastSyncId": float(ctx.state.next_sync_id()), name: view}


def _text(content: dict[str, Any], name: str, kind: str, *, required: bool = True) -> str | None:
    value = content.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"content.{name} must be a non-empty string for a {kind} activity.")
    if len(value) > MAX_TEXT_CHARS:
        raise invalid(f"content.{name} is longer than {MAX_TEXT_CHARS} characters.")
    return value


def check_content(content: Any) -> dict[str, Any]:
    """The content as stored (only the fields of its type), or ``INVALID_INPUT``."""
    if not isinstance(content, dict):
        raise invalid("content must be an object with a type.")
    kind = content.get("type")
    if kind == "prompt":
        raise invalid("prompt activities are created by people, not by the agent.")
    if kind not in AGENT_TYPES:
        raise invalid(f"content.type must be one of {', '.join(AGENT_TYPES)}.")
    if kind == "action":
        out: dict[str, Any] = {
            "type": kind,
            "action": _text(content, "action", kind),
            "parameter": _text(content, "parameter", kind),
        }
        result = _text(content, "result", kind, required=False)
        if result is not None:
            out["result"] = result
        return out
    return {"type": kind, "body": _text(content, "body", str(kind))}


def _json_field(value: Any, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(json.dumps(value)) > MAX_JSON_CHARS:
        raise invalid(f"{name} must be an object of at most {MAX_JSON_CHARS} characters as JSON.")
    return value


def _client_id(value: Any) -> str | None:
    if value is None:
        return None
    try:
        parsed = uuid.UUID(str(value))
    except ValueError:
        parsed = None
    if parsed is None or parsed.version != 4 or str(parsed) != str(value).lower():
        raise invalid(
            "id must be a UUID v4 (AgentActivityCreateInput.id); a stable one for a key is "
            "uuid.UUID(bytes=hashlib.sha256(key).digest()[:16], version=4)."
        )
    return str(parsed)


def _own_session(ctx: Ctx, session_id: str) -> AgentSession:
    session = ctx.state.sessions.get(session_id)
    token = ctx.token
    if session is None or session.org_id != token.org_id or session.app_user_id != token.user_id:
        raise not_found("AgentSession")
    return session


def append(state: LinearState, session: AgentSession, activity: Activity) -> None:
    """Add an activity to its session (agent's or person's) and update what it derives."""
    if session.activities and session.activities[-1].ephemeral:
        session.activities[-1].superseded = True
    session.activities.append(activity)
    state.activities[activity.id] = activity
    session.updated_at = activity.created_at
    if activity.type == "prompt":
        session.ended_at = None
    else:
        session.started_at = session.started_at or activity.created_at
        if activity.type in ("response", "error"):
            session.ended_at = activity.created_at
    state.touch()


def agent_activity_create(
    _root: None,
    info: GraphQLResolveInfo[Ctx],
    input: dict[str, Any],  # noqa: A002 - the schema's argument name
) -> View:
    ctx = _ctx(info)
    state = ctx.state
    session = _own_session(ctx, input["agentSessionId"])
    content = check_content(input["content"])
    ephemeral = bool(input.get("ephemeral") or False)
    if ephemeral and content["type"] not in EPHEMERAL_TYPES:
        raise invalid("only thought and action activities can be ephemeral.")
    activity_id = _client_id(input.get("id"))
    if activity_id is not None and activity_id in state.activities:
        raise already_exists("AgentActivity", activity_id)
    activity = Activity(
        id=activity_id or str(uuid.uuid4()),
        session_id=session.id,
        user_id=ctx.token.user_id,
        content=content,
        created_at=state.now(),
        ephemeral=ephemeral,
        signal=input.get("signal"),
        signal_metadata=_json_field(input.get("signalMetadata"), "signalMetadata"),
        contextual_metadata=_json_field(input.get("contextualMetadata"), "contextualMetadata"),
    )
    append(state, session, activity)
    return _payload(ctx, "agentActivity", activity_view(ctx, activity))


def _links(value: Any, name: str) -> list[ExternalLink]:
    if len(value) > MAX_LINKS:
        raise invalid(f"{name} takes at most {MAX_LINKS} links.")
    links: list[ExternalLink] = []
    for item in value:
        url, label = item["url"], item["label"]
        if not url.startswith(("http://", "https://")) or len(url) > MAX_URL_CHARS:
            raise invalid(f"{name}: each url must be an http(s) URL.")
        if not label.strip() or len(label) > 255:
            raise invalid(f"{name}: each label must be 1-255 characters.")
        links.append(ExternalLink(label=label, url=url))
    return links


def _plan(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > MAX_PLAN_STEPS:
        raise invalid(f"plan must be a list of at most {MAX_PLAN_STEPS} {{content, status}} steps.")
    steps: list[dict[str, Any]] = []
    for step in value:
        content = step.get("content") if isinstance(step, dict) else None
        status = step.get("status") if isinstance(step, dict) else None
        if not isinstance(content, str) or not content.strip() or len(content) > MAX_TEXT_CHARS:
            raise invalid("each plan step needs content: a non-empty string.")
        if status not in PLAN_STATUSES:
            raise invalid(f"each plan step needs a status: one of {', '.join(PLAN_STATUSES)}.")
        steps.append({"content": content, "status": status})
    return steps


def agent_session_update(
    _root: None,
    info: GraphQLResolveInfo[Ctx],
    id: str,  # noqa: A002
    input: dict[str, Any],  # noqa: A002
) -> View:
    ctx = _ctx(info)
    session = _own_session(ctx, id)
    links = session.external_links
    if input.get("externalUrls") is not None:
        links = _links(input["externalUrls"], "externalUrls")
    else:
        added = _links(input.get("addedExternalUrls") or [], "addedExternalUrls")
        removed = set(input.get("removedExternalUrls") or [])
        kept = [link for link in links if link.url not in removed]
        kept_urls = {link.url for link in kept}
        links = kept + [link for link in added if link.url not in kept_urls]
        if len(links) > MAX_LINKS:
            raise invalid(f"a session keeps at most {MAX_LINKS} links.")
    external_link = input.get("externalLink", session.external_link)
    if external_link is not None and not str(external_link).startswith(("http://", "https://")):
        raise invalid("externalLink must be an http(s) URL.")
    plan = _plan(input["plan"]) if input.get("plan") is not None else session.plan
    # Checked everything first: an update applies whole or not at all.
    session.external_links, session.external_link, session.plan = links, external_link, plan
    if "dismissedAt" in input:
        session.dismissed_at = input["dismissedAt"]
    session.updates.append(dict(input))
    session.updated_at = ctx.state.now()
    ctx.state.touch()
    return _payload(ctx, "agentSession", session_view(ctx, session))


def _apply_issue(ctx: Ctx, issue: Issue, changes: dict[str, Any]) -> None:
    state = ctx.state
    if changes.get("stateId") is not None:
        ws = state.workflow_states.get(changes["stateId"])
        if ws is None or ws.team_id != issue.team_id:
            raise not_found("WorkflowState")
        issue.state_id = ws.id
        if ws.type == "started" and issue.started_at is None:
            issue.started_at = state.now()
    for name, attr in (("assigneeId", "assignee_id"), ("delegateId", "delegate_id")):
        if name in changes:
            user_id = changes[name]
            if user_id is not None and state.find_user(user_id, issue.org_id) is None:
                raise not_found("User")
            setattr(issue, attr, user_id)
    if "projectId" in changes:
        project_id = changes["projectId"]
        if project_id is not None and project_id not in state.projects:
            raise not_found("Project")
        issue.project_id = project_id
    labels = list(issue.label_ids)
    if changes.get("labelIds") is not None:
        labels = list(changes["labelIds"])
    labels += [lab for lab in changes.get("addedLabelIds") or [] if lab not in labels]
    labels = [lab for lab in labels if lab not in set(changes.get("removedLabelIds") or [])]
    if any(lab not in state.labels for lab in labels):
        raise not_found("IssueLabel")
    issue.label_ids = labels
    for name, attr in (("title", "title"), ("description", "description"), ("dueDate", "due_date")):
        if name in changes:
            setattr(issue, attr, changes[name])
    if changes.get("priority") is not None:
        if not 0 <= changes["priority"] <= 4:
            raise invalid("priority must be 0 (none) to 4 (low).")
        issue.priority = changes["priority"]


def issue_update(
    _root: None,
    info: GraphQLResolveInfo[Ctx],
    id: str,  # noqa: A002
    input: dict[str, Any],  # noqa: A002
) -> View:
    ctx = _ctx(info)
    issue = ctx.state.find_issue(id, ctx.token.org_id)
    if issue is None:
        raise not_found("Issue")
    if input.get("title") is not None and not str(input["title"]).strip():
        raise invalid("title must not be empty.")
    before = issue.__dict__.copy()
    try:
        _apply_issue(ctx, issue, input)
    except Exception:
        issue.__dict__.update(before)  # all or nothing, like a transaction
        raise
    issue.updates.append(dict(input))
    issue.updated_at = ctx.state.now()
    ctx.state.touch()
    return _payload(ctx, "issue", issue_view(ctx, issue))


MUTATION = {
    "agentActivityCreate": agent_activity_create,
    "agentSessionUpdate": agent_session_update,
    "issueUpdate": issue_update,
}
