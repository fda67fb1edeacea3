"""The bodies of Linear's ``AgentSessionEvent`` webhooks (``created`` and ``prompted``).

Field names follow Linear's ``AgentSessionEventWebhookPayload`` (and its
``AgentSessionWebhookPayload``, ``AgentActivityWebhookPayload``,
``IssueWithDescriptionChildWebhookPayload`` and ``CommentChildWebhookPayload`` parts), with the
issue's ``labels`` and ``project`` added as the contract's consumers read them.
``promptContext`` (on ``created``) is the issue and the thread formatted in Linear's tag style.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

from openinspect.testing.linear.records import Activity, AgentSession, Comment, Issue, User
from openinspect.testing.linear.state import LinearState
from openinspect.testing.linear.views import iso, issue_url

EVENT = "AgentSessionEvent"


def _user(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.id, "name": user.name, "email": user.email, "url": None}


def issue_payload(state: LinearState, issue: Issue) -> dict[str, Any]:
    team = state.teams[issue.team_id]
    out: dict[str, Any] = {
        "id": issue.id,
        "identifier": issue.identifier,
        "title": issue.title,
        "description": issue.description,
        "url": issue_url(state, issue),
        "teamId": team.id,
        "team": {"id": team.id, "key": team.key, "name": team.name},
        "priority": issue.priority,
        "priorityLabel": state.priority_label(issue.priority),
        "labels": [
            {"id": lab.id, "name": lab.name, "color": lab.color}
            for lab in (state.labels[i] for i in issue.label_ids if i in state.labels)
        ],
    }
    project = state.projects.get(issue.project_id or "")
    if project is not None:
        out["project"] = {"id": project.id, "name": project.name}
    return out


def comment_payload(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "body": comment.body,
        "userId": comment.user_id,
        "issueId": comment.issue_id,
    }


def session_payload(state: LinearState, session: AgentSession) -> dict[str, Any]:
    issue = state.issues.get(session.issue_id or "")
    comment = state.comments.get(session.comment_id or "")
    creator = state.users.get(session.creator_id or "")
    return {
        "id": session.id,
        "appUserId": session.app_user_id,
        "organizationId": session.org_id,
        "type": "commentThread",
        "status": session.status,
        "createdAt": iso(session.created_at),
        "updatedAt": iso(session.updated_at),
        "startedAt": iso(session.started_at),
        "endedAt": iso(session.ended_at),
        "archivedAt": None,
        "summary": None,
        "sourceMetadata": None,
        "creatorId": session.creator_id,
        "creator": _user(creator),
        "issueId": session.issue_id,
        "issue": issue_payload(state, issue) if issue is not None else None,
        "commentId": session.comment_id,
        "comment": comment_payload(comment) if comment is not None else None,
    }


def activity_payload(activity: Activity) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": activity.id,
        "agentSessionId": activity.session_id,
        "userId": activity.user_id,
        "content": dict(activity.content),
        "createdAt": iso(activity.created_at),
        "updatedAt": iso(activity.created_at),
        "archivedAt": None,
        "sourceCommentId": None,
    }
    if activity.signal is not None:
        out["signal"] = activity.signal
        out["signalMetadata"] = activity.signal_metadata
    return out


def prompt_context(state: LinearState, issue: Issue | None, comment: Comment | None) -> str:
    """The issue (title, description, team, labels, project) and the comment that started
    the session, as Linear formats ``promptContext``."""
    parts: list[str] = []
    if issue is not None:
        team = state.teams[issue.team_id]
        lines = [
            f'<issue identifier="{escape(issue.identifier)}">',
            f"<title>{escape(issue.title)}</title>",
        ]
        if issue.description:
            lines.append(f"<description>{escape(issue.description)}</description>")
        lines.append(f'<team name="{escape(team.name)}"/>')
        lines += [
            f"<label>{escape(state.labels[i].name)}</label>"
            for i in issue.label_ids
            if i in state.labels
        ]
        project = state.projects.get(issue.project_id or "")
        if project is not None:
            lines.append(f'<project name="{escape(project.name)}"/>')
        lines.append("</issue>")
        parts.append("\n".join(lines))
    if comment is not None:
        author = state.users.get(comment.user_id)
        name = escape(author.name if author is not None else "Unknown")
        parts.append(
            f'<primary-directive-thread comment-id="{escape(comment.id)}">\n'
            f'<comment author="{name}">\n{escape(comment.body)}\n</comment>\n'
            "</primary-directive-thread>"
        )
    return "\n\n".join(parts)


def event(
    state: LinearState,
    session: AgentSession,
    action: str,
    *,
    webhook_id: str,
    client_id: str,
    activity: Activity | None = None,
) -> dict[str, Any]:
    """One ``AgentSessionEvent`` body; ``created`` carries ``promptContext``, ``prompted`` the
    person's ``agentActivity``."""
    now = time.time()
    body: dict[str, Any] = {
        "type": EVENT,
        "action": action,
        "organizationId": session.org_id,
        "webhookId": webhook_id,
        "appUserId": session.app_user_id,
        "oauthClientId": client_id,
        "createdAt": iso(now),
        "webhookTimestamp": int(now * 1000),
        "agentSession": session_payload(state, session),
        "guidance": [],
    }
    if action == "created":
        issue = state.issues.get(session.issue_id or "")
        comment = state.comments.get(session.comment_id or "")
        body["promptContext"] = prompt_context(state, issue, comment)
        body["previousComments"] = []
    if activity is not None:
        body["agentActivity"] = activity_payload(activity)
    return body
