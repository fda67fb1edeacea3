"""GitHub's JSON shapes for a PR's conversation: changed files, review comments, reactions,
the PR seen as an issue, and a collaborator's permission (see ``shapes`` for the rest).

Each is checked against githubkit's REST and webhook models in
``tests/testing/github/``.
"""

from __future__ import annotations

from collections.abc import Sequence

from openinspect.testing.github.diffs import FileDiff
from openinspect.testing.github.records import (
    REACTIONS,
    PullRec,
    ReactionRec,
    RepoRec,
    ReviewCommentRec,
)
from openinspect.testing.github.shapes import Json, Site, iso, node_id

PERMISSIONS = {"admin": "admin", "push": "write", "pull": "read", "none": "none"}
"""Our levels (the collaborator API's ``permissions``) → GitHub's permission and role name."""


def association(repo: RepoRec, user: Json) -> str:
    if user["login"].lower() == repo.owner.lower():
        return "OWNER"
    if user["type"] == "Bot":
        return "NONE"
    if user["login"].lower() in repo.collaborators:
        return "COLLABORATOR"
    return "CONTRIBUTOR"


def diff_entry(site: Site, repo: RepoRec, head_sha: str, f: FileDiff) -> Json:
    full = repo.full_name
    data: Json = {
        "sha": f.sha,
        "filename": f.filename,
        "status": f.status,
        "additions": f.additions,
        "deletions": f.deletions,
        "changes": f.changes,
        "blob_url": f"{site.web}/{full}/blob/{head_sha}/{f.filename}",
        "raw_url": f"{site.web}/{full}/raw/{head_sha}/{f.filename}",
        "contents_url": f"{site.api}/repos/{full}/contents/{f.filename}?ref={head_sha}",
    }
    if f.patch is not None:
        data["patch"] = f.patch
    if f.previous_filename is not None:
        data["previous_filename"] = f.previous_filename
    return data


def rollup(url: str, reactions: Sequence[ReactionRec]) -> Json:
    counts = {c: sum(r.content == c for r in reactions) for c in REACTIONS}
    return {"url": url, "total_count": len(reactions), **counts}


def reaction(rec: ReactionRec, user: Json) -> Json:
    return {
        "id": rec.id,
        "node_id": node_id("REA", rec.id),
        "user": user,
        "content": rec.content,
        "created_at": iso(rec.created_at),
    }


def review_comment(
    site: Site, repo: RepoRec, pull: PullRec, rec: ReviewCommentRec, user: Json
) -> Json:
    full = repo.full_name
    url = f"{site.api}/repos/{full}/pulls/comments/{rec.id}"
    html = f"{site.web}/{full}/pull/{pull.number}#discussion_r{rec.id}"
    pr_url = f"{site.api}/repos/{full}/pulls/{pull.number}"
    reactions = [r for r in repo.reactions if r.subject == f"pull_comment:{rec.id}"]
    data: Json = {
        "url": url,
        "pull_request_review_id": rec.review_id,
        "id": rec.id,
        "node_id": node_id("PRRC", rec.id),
        "diff_hunk": rec.diff_hunk,
        "path": rec.path,
        "position": rec.position,
        "original_position": rec.position,
        "commit_id": rec.commit_id,
        "original_commit_id": rec.commit_id,
        "user": user,
        "body": rec.body,
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.created_at),
        "html_url": html,
        "pull_request_url": pr_url,
        "author_association": association(repo, user),
        "_links": {
            "self": {"href": url},
            "html": {"href": html},
            "pull_request": {"href": pr_url},
        },
        "start_line": rec.start_line,
        "original_start_line": rec.start_line,
        "start_side": rec.start_side,
        "line": rec.line,
        "original_line": rec.line,
        "side": rec.side,
        "subject_type": "line",
        "reactions": rollup(f"{url}/reactions", reactions),
    }
    if rec.in_reply_to_id is not None:
        data["in_reply_to_id"] = rec.in_reply_to_id
    return data


def issue_comment(
    site: Site, repo: RepoRec, number: int, ident: int, body: str, user: Json, at: float
) -> Json:
    """An issue comment with its reactions and the App it came through (webhooks need both)."""
    data = site.issue_comment(repo, number, ident, body, user, at)
    reactions = [r for r in repo.reactions if r.subject == f"issue_comment:{ident}"]
    data["reactions"] = rollup(f"{data['url']}/reactions", reactions)
    data["author_association"] = association(repo, user)
    data["performed_via_github_app"] = None
    return data


def issue(site: Site, repo: RepoRec, pull: PullRec, author: Json) -> Json:
    """The PR as the issue it also is (``issue_comment`` webhooks carry it)."""
    full = repo.full_name
    url = f"{site.api}/repos/{full}/issues/{pull.number}"
    reactions = [r for r in repo.reactions if r.subject == f"issue:{pull.number}"]
    return {
        "url": url,
        "repository_url": f"{site.api}/repos/{full}",
        "labels_url": f"{url}/labels{{/name}}",
        "comments_url": f"{url}/comments",
        "events_url": f"{url}/events",
        "html_url": f"{site.web}/{full}/pull/{pull.number}",
        "id": pull.id,
        "node_id": node_id("I", pull.id),
        "number": pull.number,
        "title": pull.title,
        "user": author,
        "labels": [],
        "state": pull.state,
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": len(pull.comments),
        "created_at": iso(pull.created_at),
        "updated_at": iso(pull.updated_at),
        "closed_at": iso(pull.closed_at),
        "author_association": association(repo, author),
        "active_lock_reason": None,
        "draft": pull.draft,
        "body": pull.body,
        "reactions": rollup(f"{url}/reactions", reactions),
        "timeline_url": f"{url}/timeline",
        "performed_via_github_app": None,
        "state_reason": None,
        "pull_request": {
            "url": f"{site.api}/repos/{full}/pulls/{pull.number}",
            "html_url": f"{site.web}/{full}/pull/{pull.number}",
            "diff_url": f"{site.web}/{full}/pull/{pull.number}.diff",
            "patch_url": f"{site.web}/{full}/pull/{pull.number}.patch",
            "merged_at": iso(pull.merged_at),
        },
    }


def permission(level: str, user: Json) -> Json:
    """``GET /collaborators/{user}/permission``: ``level`` is none, pull, push or admin."""
    rank = ("none", "pull", "push", "admin").index(level)
    collaborator = user | {
        "role_name": PERMISSIONS[level],
        "permissions": {
            "admin": rank >= 3,
            "maintain": rank >= 3,
            "push": rank >= 2,
            "triage": rank >= 2,
            "pull": rank >= 1,
        },
    }
    return {
        "permission": PERMISSIONS[level],
        "role_name": PERMISSIONS[level],
        "user": collaborator,
    }
