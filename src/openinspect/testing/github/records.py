"""What the fake GitHub knows, as plain pydantic records (so the whole state is one JSON file).

Logins, owners and repository names are case-insensitive on GitHub; the maps here are keyed by
the lower-cased name and the records keep the spelling they were created with.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Permission = Literal["pull", "push", "admin"]
Level = Literal["none", "pull", "push", "admin"]
LEVELS: dict[Level, int] = {"none": 0, "pull": 1, "push": 2, "admin": 3}


class EmailRec(BaseModel):
    email: str
    verified: bool = True
    primary: bool = False


class UserRec(BaseModel):
    id: int
    login: str
    name: str | None = None
    emails: list[EmailRec] = Field(default_factory=list)
    orgs: list[str] = Field(default_factory=list)
    type: Literal["User", "Organization"] = "User"
    created_at: float


class ReviewRec(BaseModel):
    id: int
    user_login: str
    user_is_bot: bool = False
    body: str
    state: str
    """APPROVED, CHANGES_REQUESTED, COMMENTED or PENDING (not submitted yet)."""
    commit_id: str
    submitted_at: float | None


class ReviewCommentRec(BaseModel):
    """A comment on a line of a PR's diff; every one belongs to a review (a single comment or a
    reply gets a review of its own, as on GitHub)."""

    id: int
    review_id: int
    user_login: str
    user_is_bot: bool = False
    body: str
    path: str
    line: int | None
    side: Literal["LEFT", "RIGHT"]
    start_line: int | None = None
    start_side: Literal["LEFT", "RIGHT"] | None = None
    position: int
    commit_id: str
    diff_hunk: str
    in_reply_to_id: int | None = None
    created_at: float


class CommentRec(BaseModel):
    id: int
    user_login: str
    user_is_bot: bool = False
    body: str
    created_at: float


ReactionContent = Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]
REACTIONS: tuple[str, ...] = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


class ReactionRec(BaseModel):
    id: int
    subject: str
    """``issue:<number>``, ``issue_comment:<id>`` or ``pull_comment:<id>`` (a review comment)."""
    user_login: str
    user_is_bot: bool = False
    content: ReactionContent
    created_at: float


class PullRec(BaseModel):
    id: int
    number: int
    title: str
    body: str | None = None
    head: str
    base: str
    head_sha: str
    base_sha: str
    user_login: str
    user_is_bot: bool = False
    draft: bool = False
    state: Literal["open", "closed"] = "open"
    merged: bool = False
    merged_at: float | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    closed_at: float | None = None
    created_at: float
    updated_at: float
    head_repo: str | None = None
    """The lower-cased full name of the fork the head branch lives in (None: this repo)."""
    head_owner: str | None = None
    """The fork's owner as spelled (None: this repo's owner)."""
    requested_reviewers: list[str] = Field(default_factory=list)
    reviews: list[ReviewRec] = Field(default_factory=list)
    comments: list[CommentRec] = Field(default_factory=list)
    """Issue comments (the PR's conversation)."""
    review_comments: list[ReviewCommentRec] = Field(default_factory=list)


class JobRec(BaseModel):
    """A GitHub Actions job of a workflow run; its check run has the same id."""

    id: int
    run_id: int
    run_attempt: int = 1
    name: str
    head_sha: str
    head_branch: str
    conclusion: str
    log: str
    log_token: str
    """Part of the log's download URL (GitHub's are signed and expire)."""
    title: str | None = None
    summary: str | None = None
    text: str | None = None
    pulls: list[int] = Field(default_factory=list)
    created_at: float


class WorkflowRunRec(BaseModel):
    id: int
    name: str
    head_branch: str
    head_sha: str
    run_attempt: int = 1
    run_number: int
    conclusion: str
    actor: str
    job_ids: list[int] = Field(default_factory=list)
    pulls: list[int] = Field(default_factory=list)
    created_at: float


class RepoRec(BaseModel):
    id: int
    owner: str
    name: str
    private: bool = True
    default_branch: str = "main"
    collaborators: dict[str, Permission] = Field(default_factory=dict)
    """Lower-cased login → permission. The owning user is always admin."""
    created_at: float
    pushed_at: float
    next_number: int = 1
    pulls: dict[int, PullRec] = Field(default_factory=dict)
    jobs: dict[int, JobRec] = Field(default_factory=dict)
    """GitHub Actions jobs, which are also its check runs (same ids)."""
    workflow_runs: dict[int, WorkflowRunRec] = Field(default_factory=dict)
    fork_of: str | None = None
    """The lower-cased full name of the repository this one is a fork of."""
    reactions: list[ReactionRec] = Field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def key(self) -> str:
        return self.full_name.lower()


class InstallationRec(BaseModel):
    id: int
    account: str
    repos: list[str]
    """Lower-cased full names."""
    permissions: dict[str, str]
    created_at: float


class InstallationTokenRec(BaseModel):
    token: str
    installation_id: int
    repos: list[str]
    """Lower-cased full names the token may use."""
    permissions: dict[str, str]
    expires_at: float


class UserTokenRec(BaseModel):
    token: str
    login: str
    scopes: list[str] = Field(default_factory=list)
    expires_at: float | None = None
    refresh_token: str | None = None
    refresh_expires_at: float | None = None


class OAuthCodeRec(BaseModel):
    code: str
    login: str
    client_id: str
    redirect_uri: str | None
    scopes: list[str]
    expires_at: float


class DeviceGrantRec(BaseModel):
    device_code: str
    user_code: str
    client_id: str
    scopes: list[str]
    expires_at: float
    interval_s: float
    last_poll_at: float | None = None
    login: str | None = None
    denied: bool = False
    done: bool = False


class AppRec(BaseModel):
    id: int
    slug: str
    name: str
    client_id: str
    client_secret: str
    webhook_secret: str
    private_key_pem: str

    @property
    def bot_login(self) -> str:
        return f"{self.slug}[bot]"

    @property
    def bot_id(self) -> int:
        return 40_000_000 + self.id


class HookRec(BaseModel):
    url: str
    secret: str


class Settings(BaseModel):
    """Knobs tests turn."""

    installation_token_ttl_s: float = 3600.0
    user_token_ttl_s: float | None = 8 * 3600.0
    """None: user tokens never expire and come without a refresh token."""
    refresh_token_ttl_s: float = 184 * 24 * 3600.0
    device_interval_s: float = 5.0
    device_expires_s: float = 900.0
    oauth_user: str | None = None
    oauth_deny: bool = False


class StateData(BaseModel):
    """Everything, as persisted under ``--data DIR`` (``state.json``)."""

    next_id: int = 1000
    app: AppRec
    settings: Settings = Field(default_factory=Settings)
    users: dict[str, UserRec] = Field(default_factory=dict)
    repos: dict[str, RepoRec] = Field(default_factory=dict)
    installations: dict[int, InstallationRec] = Field(default_factory=dict)
    installation_tokens: dict[str, InstallationTokenRec] = Field(default_factory=dict)
    user_tokens: dict[str, UserTokenRec] = Field(default_factory=dict)
    codes: dict[str, OAuthCodeRec] = Field(default_factory=dict)
    devices: dict[str, DeviceGrantRec] = Field(default_factory=dict)
    hook: HookRec | None = None
