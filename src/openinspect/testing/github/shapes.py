"""GitHub's JSON shapes for the fake's records: users, repositories, installations, pull
requests, reviews, comments, branches and webhook payloads.

Only what callers and githubkit's response models need is filled in, but every field those
models require is present with the type GitHub sends (``tests/testing/test_github_server.py``
validates each shape against githubkit's models).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from openinspect.testing.github.records import (
    LEVELS,
    AppRec,
    InstallationRec,
    Level,
    PullRec,
    RepoRec,
    ReviewRec,
    UserRec,
)

Json = dict[str, Any]


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, ident: int) -> str:
    return base64.b64encode(f"0:{kind}{ident}".encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Site:
    """Where the fake is reachable: ``web`` (``http://127.0.0.1:PORT``) and ``api``
    (``…/api/v3``)."""

    web: str

    @property
    def api(self) -> str:
        return f"{self.web}/api/v3"

    @property
    def host(self) -> str:
        return urlsplit(self.web).netloc

    def simple_user(self, login: str, ident: int, kind: str = "User") -> Json:
        url = f"{self.api}/users/{login}"
        return {
            "login": login,
            "id": ident,
            "node_id": node_id("U", ident),
            "avatar_url": f"{self.web}/avatars/u/{ident}?v=4",
            "gravatar_id": "",
            "url": url,
            "html_url": f"{self.web}/{login}",
            "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}",
            "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs",
            "repos_url": f"{url}/repos",
            "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events",
            "type": kind,
            "site_admin": False,
        }

    def user(self, user: UserRec) -> Json:
        return self.simple_user(user.login, user.id, user.type)

    def bot(self, app: AppRec) -> Json:
        return self.simple_user(app.bot_login, app.bot_id, "Bot")

    def private_user(self, user: UserRec) -> Json:
        primary = next((e.email for e in user.emails if e.primary), None)
        created = iso(user.created_at)
        return self.user(user) | {
            "name": user.name,
            "company": None,
            "blog": "",
            "location": None,
            "email": primary,
            "hireable": None,
            "bio": None,
            "twitter_username": None,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": created,
            "updated_at": created,
            "private_gists": 0,
            "total_private_repos": 0,
            "owned_private_repos": 0,
            "disk_usage": 0,
            "collaborators": 0,
            "two_factor_authentication": True,
        }

    def org(self, login: str, ident: int) -> Json:
        url = f"{self.api}/orgs/{login}"
        return {
            "login": login,
            "id": ident,
            "node_id": node_id("O", ident),
            "url": url,
            "repos_url": f"{url}/repos",
            "events_url": f"{url}/events",
            "hooks_url": f"{url}/hooks",
            "issues_url": f"{url}/issues",
            "members_url": f"{url}/members{{/member}}",
            "public_members_url": f"{url}/public_members{{/member}}",
            "avatar_url": f"{self.web}/avatars/u/{ident}?v=4",
            "description": None,
        }

    def repository(self, repo: RepoRec, owner: Json, level: Level | None = None) -> Json:
        """A repository; ``level`` adds ``permissions`` as seen by the caller."""
        full = repo.full_name
        url = f"{self.api}/repos/{full}"
        data: Json = {
            "id": repo.id,
            "node_id": node_id("R", repo.id),
            "name": repo.name,
            "full_name": full,
            "owner": owner,
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "html_url": f"{self.web}/{full}",
            "description": None,
            "fork": repo.fork_of is not None,
            "url": url,
            "archive_url": f"{url}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{url}/assignees{{/user}}",
            "blobs_url": f"{url}/git/blobs{{/sha}}",
            "branches_url": f"{url}/branches{{/branch}}",
            "collaborators_url": f"{url}/collaborators{{/collaborator}}",
            "comments_url": f"{url}/comments{{/number}}",
            "commits_url": f"{url}/commits{{/sha}}",
            "compare_url": f"{url}/compare/{{base}}...{{head}}",
            "contents_url": f"{url}/contents/{{+path}}",
            "contributors_url": f"{url}/contributors",
            "deployments_url": f"{url}/deployments",
            "downloads_url": f"{url}/downloads",
            "events_url": f"{url}/events",
            "forks_url": f"{url}/forks",
            "git_commits_url": f"{url}/git/commits{{/sha}}",
            "git_refs_url": f"{url}/git/refs{{/sha}}",
            "git_tags_url": f"{url}/git/tags{{/sha}}",
            "git_url": f"git://{self.host}/{full}.git",
            "issue_comment_url": f"{url}/issues/comments{{/number}}",
            "issue_events_url": f"{url}/issues/events{{/number}}",
            "issues_url": f"{url}/issues{{/number}}",
            "keys_url": f"{url}/keys{{/key_id}}",
            "labels_url": f"{url}/labels{{/name}}",
            "languages_url": f"{url}/languages",
            "merges_url": f"{url}/merges",
            "milestones_url": f"{url}/milestones{{/number}}",
            "notifications_url": f"{url}/notifications{{?since,all,participating}}",
            "pulls_url": f"{url}/pulls{{/number}}",
            "releases_url": f"{url}/releases{{/id}}",
            "ssh_url": f"git@{urlsplit(self.web).hostname}:{full}.git",
            "stargazers_url": f"{url}/stargazers",
            "statuses_url": f"{url}/statuses/{{sha}}",
            "subscribers_url": f"{url}/subscribers",
            "subscription_url": f"{url}/subscription",
            "tags_url": f"{url}/tags",
            "teams_url": f"{url}/teams",
            "trees_url": f"{url}/git/trees{{/sha}}",
            "clone_url": f"{self.web}/{full}.git",
            "mirror_url": None,
            "hooks_url": f"{url}/hooks",
            "svn_url": f"{self.web}/{full}",
            "homepage": None,
            "language": None,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "size": 0,
            "default_branch": repo.default_branch,
            "open_issues_count": sum(p.state == "open" for p in list(repo.pulls.values())),
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": False,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "pushed_at": iso(repo.pushed_at),
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.pushed_at),
            "allow_forking": True,
            "web_commit_signoff_required": False,
            "subscribers_count": 0,
            "network_count": 0,
            "license": None,
            "forks": 0,
            "open_issues": sum(p.state == "open" for p in list(repo.pulls.values())),
            "watchers": 0,
        }
        if level is not None:
            rank = LEVELS[level]
            data["permissions"] = {
                "admin": rank >= 3,
                "maintain": rank >= 3,
                "push": rank >= 2,
                "triage": rank >= 2,
                "pull": rank >= 1,
            }
        return data

    def installation(self, inst: InstallationRec, app: AppRec, account: Json) -> Json:
        created = iso(inst.created_at)
        return {
            "id": inst.id,
            "account": account,
            "repository_selection": "selected",
            "access_tokens_url": f"{self.api}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.api}/installation/repositories",
            "html_url": f"{self.web}/settings/installations/{inst.id}",
            "app_id": app.id,
            "app_slug": app.slug,
            "target_id": account["id"],
            "target_type": account["type"],
            "permissions": dict(inst.permissions),
            "events": ["pull_request", "push", "issue_comment"],
            "created_at": created,
            "updated_at": created,
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    def pull(
        self,
        repo: RepoRec,
        repo_json: Json,
        pull: PullRec,
        author: Json,
        merged_by: Json | None,
        commits: int,
        *,
        head_repo: Json | None = None,
        reviewers: Sequence[Json] = (),
    ) -> Json:
        """A PR; ``head_repo`` is the fork its head branch lives in (None: ``repo``)."""
        full = repo.full_name
        url = f"{self.api}/repos/{full}/pulls/{pull.number}"
        html = f"{self.web}/{full}/pull/{pull.number}"
        issue = f"{self.api}/repos/{full}/issues/{pull.number}"

        def side(ref: str, sha: str, where: Json) -> Json:
            return {
                "label": f"{where['owner']['login']}:{ref}",
                "ref": ref,
                "sha": sha,
                "user": where["owner"],
                "repo": where,
            }

        def link(href: str) -> Json:
            return {"href": href}

        return {
            "url": url,
            "id": pull.id,
            "node_id": node_id("PR", pull.id),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue,
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{self.api}/repos/{full}/pulls/comments{{/number}}",
            "comments_url": f"{issue}/comments",
            "statuses_url": f"{self.api}/repos/{full}/statuses/{pull.head_sha}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": author,
            "body": pull.body,
            "labels": [],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": iso(pull.created_at),
            "updated_at": iso(pull.updated_at),
            "closed_at": iso(pull.closed_at),
            "merged_at": iso(pull.merged_at),
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": list(reviewers),
            "requested_teams": [],
            "head": side(pull.head, pull.head_sha, head_repo or repo_json),
            "base": side(pull.base, pull.base_sha, repo_json),
            "_links": {
                "self": link(url),
                "html": link(html),
                "issue": link(issue),
                "comments": link(f"{issue}/comments"),
                "review_comments": link(f"{url}/comments"),
                "review_comment": link(f"{self.api}/repos/{full}/pulls/comments{{/number}}"),
                "commits": link(f"{url}/commits"),
                "statuses": link(f"{self.api}/repos/{full}/statuses/{pull.head_sha}"),
            },
            "author_association": "OWNER"
            if author["login"].lower() == repo.owner.lower()
            else ("CONTRIBUTOR" if author["type"] == "Bot" else "COLLABORATOR"),
            "auto_merge": None,
            "draft": pull.draft,
            "merged": pull.merged,
            "mergeable": None if pull.state == "closed" else True,
            "rebaseable": None,
            "mergeable_state": "unknown" if pull.state == "closed" else "clean",
            "merged_by": merged_by,
            "comments": len(pull.comments),
            "review_comments": len(pull.review_comments),
            "maintainer_can_modify": False,
            "commits": commits,
            "additions": 0,
            "deletions": 0,
            "changed_files": 0,
        }

    def review(self, repo: RepoRec, pull: PullRec, review: ReviewRec, user: Json) -> Json:
        full = repo.full_name
        html = f"{self.web}/{full}/pull/{pull.number}#pullrequestreview-{review.id}"
        pr_url = f"{self.api}/repos/{full}/pulls/{pull.number}"
        return {
            "id": review.id,
            "node_id": node_id("PRR", review.id),
            "user": user,
            "body": review.body,
            "state": review.state,
            "html_url": html,
            "pull_request_url": pr_url,
            "_links": {"html": {"href": html}, "pull_request": {"href": pr_url}},
            "submitted_at": iso(review.submitted_at),
            "commit_id": review.commit_id,
            "author_association": "CONTRIBUTOR",
        }

    def issue_comment(
        self, repo: RepoRec, number: int, ident: int, body: str, user: Json, at: float
    ) -> Json:
        full = repo.full_name
        return {
            "id": ident,
            "node_id": node_id("IC", ident),
            "url": f"{self.api}/repos/{full}/issues/comments/{ident}",
            "html_url": f"{self.web}/{full}/pull/{number}#issuecomment-{ident}",
            "issue_url": f"{self.api}/repos/{full}/issues/{number}",
            "body": body,
            "user": user,
            "created_at": iso(at),
            "updated_at": iso(at),
            "author_association": "CONTRIBUTOR",
        }

    def branch(self, repo: RepoRec, name: str, commit: dict[str, str], sha: str) -> Json:
        full = repo.full_name
        url = f"{self.api}/repos/{full}/commits/{sha}"
        parents = [p for p in commit.get("parents", "").split() if p]
        return {
            "name": name,
            "commit": {
                "sha": sha,
                "node_id": node_id("C", int(sha[:8], 16)),
                "url": url,
                "html_url": f"{self.web}/{full}/commit/{sha}",
                "comments_url": f"{url}/comments",
                "commit": {
                    "url": f"{self.api}/repos/{full}/git/commits/{sha}",
                    "author": {
                        "name": commit["author_name"],
                        "email": commit["author_email"],
                        "date": commit["author_date"],
                    },
                    "committer": {
                        "name": commit["committer_name"],
                        "email": commit["committer_email"],
                        "date": commit["committer_date"],
                    },
                    "message": commit["message"].rstrip("\n"),
                    "comment_count": 0,
                    "tree": {
                        "sha": commit["tree"],
                        "url": f"{self.api}/repos/{full}/git/trees/{commit['tree']}",
                    },
                },
                "author": None,
                "committer": None,
                "parents": [
                    {
                        "sha": p,
                        "url": f"{self.api}/repos/{full}/commits/{p}",
                        "html_url": f"{self.web}/{full}/commit/{p}",
                    }
                    for p in parents
                ],
            },
            "_links": {
                "self": f"{self.api}/repos/{full}/branches/{name}",
                "html": f"{self.web}/{full}/tree/{name}",
            },
            "protected": False,
            "protection": {"enabled": False},
            "protection_url": f"{self.api}/repos/{full}/branches/{name}/protection",
        }
