"""Every exception openinspect raises on purpose.

Third-party errors (SQLAlchemy, websockets, httpx, subprocess…) are caught at the boundary that
talks to them and re-raised as one of these ``from exc``. Code above a boundary only ever sees this
tree, and the API turns any of them into the one JSON error envelope using ``code`` and ``status``.

    OpenInspectError                      code "internal"            500
    ├── ConfigError                       "config_invalid"           500
    │   ├── NotConfigured                 "not_configured"           404
    │   └── ImagesUnsupported             "images_unsupported"       409
    ├── AuthError                         "unauthenticated"          401
    │   ├── ForbiddenError                "forbidden"                403
    │   │   ├── SignInRefused             "sign_in_refused"          403
    │   │   ├── RepoAccessDenied          "repo_access_denied"       403
    │   │   ├── OriginNotAllowed          "origin_not_allowed"       403
    │   │   └── InstallDenied             "install_denied"           403
    │   ├── TokenExpired                  "token_expired"            401
    │   ├── TokenRevoked                  "token_revoked"            401
    │   ├── LoginLinkInvalid              "login_link_invalid"       401
    │   │   ├── LoginLinkUsed             "login_link_used"          410
    │   │   └── LoginLinkExpired          "login_link_expired"       410
    │   ├── SignInRateLimited             "sign_in_rate_limited"     429
    │   ├── InstallStateInvalid           "install_state_invalid"    401
    │   └── WebhookSignatureInvalid       "webhook_signature_invalid" 401
    │       ├── SignatureMissing          "signature_missing"        401
    │       ├── SignatureInvalid          "signature_invalid"        401
    │       └── TimestampStale            "timestamp_stale"          401
    ├── NotFoundError                     "not_found"                404
    │   ├── SessionNotFound               "session_not_found"        404
    │   ├── PromptNotFound                "prompt_not_found"         404
    │   ├── RepoNotFound                  "repo_not_found"           404
    │   ├── AutomationNotFound            "automation_not_found"     404
    │   ├── SecretNotFound                "secret_not_found"         404
    │   ├── ImageBuildNotFound            "image_build_not_found"    404
    │   └── SlackLinkNotFound             "slack_link_not_found"     404
    │       ├── SlackLinkUsed             "slack_link_used"          410
    │       └── SlackLinkExpired          "slack_link_expired"       410
    ├── InvalidInput                      "invalid_input"            422
    │   ├── BodyNotJson                   "invalid_input"            400
    │   ├── UnsupportedMediaType          "unsupported_media"        415
    │   ├── PromptTooLarge                "prompt_too_large"         413
    │   ├── UnknownModel                  "unknown_model"            422
    │   ├── ModelNotConfigured            "model_not_configured"     422
    │   ├── InvalidEffort                 "invalid_effort"           422
    │   ├── RepoUnusable                  "repo_unusable"            422
    │   ├── BranchNotFound                "branch_not_found"         422
    │   ├── ForkPointInvalid              "fork_point_invalid"       422
    │   ├── ForkPointUnknown              "fork_point_unknown"       422
    │   ├── SignInCodeInvalid             "sign_in_code_invalid"     422
    │   ├── PullRequestEmpty              "pull_request_empty"       422
    │   ├── ScheduleInvalid               "schedule_invalid"         422
    │   └── SecretInvalid                 "secret_invalid"           422
    ├── ConflictError                     "conflict"                 409
    │   ├── QueueFull                     "prompt_queue_full"        429
    │   ├── PromptNotCancellable          "prompt_not_cancellable"   409
    │   ├── PromptRequestConflict         "prompt_request_conflict"  409
    │   ├── SessionNotPromptable          "session_not_promptable"   409
    │   ├── SessionBusy                   "session_busy"             409
    │   ├── IdempotencyKeyReused          "idempotency_key_reused"   409
    │   ├── UserLimitReached              "user_limit_reached"       429
    │   ├── WatcherLimitReached           "watcher_limit_reached"    429
    │   ├── LeaseLost                     "lease_lost"               409
    │   ├── AutomationBusy                "automation_busy"          409
    │   └── SecretLimitReached            "secret_limit_reached"     409
    ├── StoreError                        "store_failed"             500
    │   ├── StoreUnavailable              "store_unavailable"        503  (retryable)
    │   └── StoreConflict                 "store_conflict"           409
    ├── GitError                          "git_failed"               502
    ├── ScmError                          "scm_failed"               502
    │   ├── ScmAuthFailed                 "scm_auth_failed"          502
    │   ├── ScmNotFound                   "scm_not_found"            404
    │   ├── ScmRateLimited                "scm_rate_limited"         429
    │   └── ScmUnavailable                "scm_unavailable"          503
    ├── LinearError                       "linear_failed"            502
    │   ├── LinearAuthFailed              "linear_auth_failed"       502
    │   ├── LinearRateLimited             "linear_rate_limited"      429
    │   └── LinearUnavailable             "linear_unavailable"       503
    │                                     (linear_code: Linear's own error code, if any)
    ├── ModelError                        "model_failed"             502
    │   └── ModelUnreachable              "model_unreachable"        502
    ├── LimitExceeded                     "limit_exceeded"           429
    │                                     (limit_code: step_limit | time_limit | cost_limit)
    ├── OwnerUnreachable                  "owner_unreachable"        503
    │   ├── OwnerGone                     "owner_gone"               503
    │   └── SessionMoved                  "session_moved"            503
    └── SandboxError                      "sandbox_failed"           503
        ├── SandboxUnavailable            "sandbox_unavailable"      503
        │   └── SandboxAtCapacity         "sandbox_unavailable"      503
        ├── SandboxBootFailed             "sandbox_boot_failed"      503
        ├── SandboxLost                   "sandbox_lost"             503
        ├── SnapshotFailed                "snapshot_failed"          503
        ├── SnapshotCorrupt               "snapshot_corrupt"         503
        └── RpcError                      "sandbox_rpc_failed"       502

``message`` says what was expected and what arrived; ``hint`` says what to do about it.

Store errors are mapped in one place, an engine hook (``store/db.py``): every SQLAlchemy or driver
error of the store's engine arrives as a ``StoreError``, its message naming no SQL and no path,
the original kept as ``__cause__`` for the server log.
"""

from __future__ import annotations

from typing import Any, ClassVar


class OpenInspectError(Exception):
    """Base of the tree. ``code`` is stable and documented; ``status`` is the HTTP status."""

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500

    def __init__(self, message: str, *, hint: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} ({self.hint})"


class ConfigError(OpenInspectError):
    code = "config_invalid"


class NotConfigured(ConfigError):
    """A feature was used that this install has not set up (e.g. GitHub sign-in). A client's
    request for something this server does not offer: a 4xx (404, the feature is not here), so
    it is never mistaken for the server failing."""

    code = "not_configured"
    status = 404


class ImagesUnsupported(ConfigError):
    """Repo images were asked for on a sandbox backend that keeps no snapshots: the server's
    configuration, which the caller cannot change (409, not a server failure)."""

    code = "images_unsupported"
    status = 409


class AuthError(OpenInspectError):
    code = "unauthenticated"
    status = 401


class ForbiddenError(AuthError):
    code = "forbidden"
    status = 403


class SignInRefused(ForbiddenError):
    """The identity provider vouched for the person, but the allowlists do not admit them."""

    code = "sign_in_refused"


class RepoAccessDenied(ForbiddenError):
    """The user cannot read a repository through their own identity."""

    code = "repo_access_denied"


class OriginNotAllowed(ForbiddenError):
    """A client claimed a door it is not (a REST client saying it is Slack)."""

    code = "origin_not_allowed"


class InstallDenied(ForbiddenError):
    """The person installing an integration did not approve it on the provider's page."""

    code = "install_denied"


class InstallStateInvalid(AuthError):
    """An integration's install came back with a ``state`` this server did not issue, that
    expired, or that was used already."""

    code = "install_state_invalid"


class TokenExpired(AuthError):
    """A bearer token that was valid once and has expired (a browser sign-in ends this way)."""

    code = "token_expired"


class TokenRevoked(AuthError):
    """A bearer token that was revoked (signed out, or revoked on the tokens page)."""

    code = "token_revoked"


class LoginLinkInvalid(AuthError):
    """A sign-in link code that this server never minted (or a malformed one)."""

    code = "login_link_invalid"


class LoginLinkUsed(LoginLinkInvalid):
    """A sign-in link that was already used: each works once."""

    code = "login_link_used"
    status = 410


class LoginLinkExpired(LoginLinkInvalid):
    code = "login_link_expired"
    status = 410


class SignInRateLimited(AuthError):
    """Too many failed sign-in attempts from one client in a short time."""

    code = "sign_in_rate_limited"
    status = 429


class WebhookSignatureInvalid(AuthError):
    """A webhook delivery that does not prove its sender. GitHub's door raises this one; the
    automation doors (``automations.signatures``) raise the subclasses, whose codes say why."""

    code = "webhook_signature_invalid"


class SignatureMissing(WebhookSignatureInvalid):
    """No signature or bearer secret came with the delivery."""

    code = "signature_missing"


class SignatureInvalid(WebhookSignatureInvalid):
    """A signature or bearer secret that is malformed or does not match."""

    code = "signature_invalid"


class TimestampStale(WebhookSignatureInvalid):
    """A signed delivery's timestamp is missing, unreadable, or too far from this server's
    clock (a replay, or a clock out of step)."""

    code = "timestamp_stale"


class NotFoundError(OpenInspectError):
    code = "not_found"
    status = 404


class SessionNotFound(NotFoundError):
    code = "session_not_found"


SESSION_NOT_FOUND_HINT = "Check the session id; the session list shows the sessions you can open"


class PromptNotFound(NotFoundError):
    code = "prompt_not_found"


class RepoNotFound(NotFoundError):
    code = "repo_not_found"


class AutomationNotFound(NotFoundError):
    """No such automation, or one the caller may not see (the same answer for both)."""

    code = "automation_not_found"


class SecretNotFound(NotFoundError):
    """No secret of that name in that scope (global, or the repo asked for)."""

    code = "secret_not_found"


class ImageBuildNotFound(NotFoundError):
    """No build of that id among the repo's image builds."""

    code = "image_build_not_found"


class SkillNotFound(NotFoundError):
    """No managed skill of that name in that scope (global, or the repo asked for)."""

    code = "skill_not_found"


class McpServerNotFound(NotFoundError):
    """No MCP server of that name in that scope (global, or the repo asked for)."""

    code = "mcp_server_not_found"


class SlackLinkNotFound(NotFoundError):
    """No usable Slack account link code (unknown, or see the subclasses)."""

    code = "slack_link_not_found"


class SlackLinkUsed(SlackLinkNotFound):
    code = "slack_link_used"
    status = 410


class SlackLinkExpired(SlackLinkNotFound):
    code = "slack_link_expired"
    status = 410


class InvalidInput(OpenInspectError):
    code = "invalid_input"
    status = 422


class BodyNotJson(InvalidInput):
    """A body that should be JSON and is not (a webhook delivery): a 400, as the request itself
    is malformed, with the code every invalid input has."""

    status = 400


class UnsupportedMediaType(InvalidInput):
    """A body of a content type the route does not take (a webhook that is not JSON)."""

    code = "unsupported_media"
    status = 415


class PromptTooLarge(InvalidInput):
    code = "prompt_too_large"
    status = 413


class UnknownModel(InvalidInput):
    code = "unknown_model"


class ModelNotConfigured(InvalidInput):
    """A known provider this server has no key or URL for: refused at submit time."""

    code = "model_not_configured"


class InvalidEffort(InvalidInput):
    code = "invalid_effort"


class RepoUnusable(InvalidInput):
    """A repo URL or path that git cannot fetch (missing, not a repository, unreachable)."""

    code = "repo_unusable"


class BranchNotFound(InvalidInput):
    """A branch or ref a session was to work on or start from is not in its repo (a pull
    request's head that was deleted, a fork's head GitHub no longer has)."""

    code = "branch_not_found"


class ForkPointInvalid(InvalidInput):
    """A fork asked for at an event the session does not have (below 1, past its last)."""

    code = "fork_point_invalid"


class ForkPointUnknown(InvalidInput):
    """A fork asked for inside a prompt whose messages were stored before the server recorded
    which prompt wrote each: where to cut that conversation is not known."""

    code = "fork_point_unknown"


class SignInCodeInvalid(InvalidInput):
    """GitHub does not know the device code a client polls with (bogus, or from elsewhere)."""

    code = "sign_in_code_invalid"


class PullRequestEmpty(InvalidInput):
    """The session branch has no commits over its base (or was never pushed): no PR to open."""

    code = "pull_request_empty"


class ScheduleInvalid(InvalidInput):
    """A cron expression or time zone refused: not five fields, unparsable, an unknown zone, or
    firing more often than automations may (the message says which, and when)."""

    code = "schedule_invalid"


class SecretInvalid(InvalidInput):
    """A secret's name or value, or a line of imported ``.env`` text, that is not accepted
    (``secrets.rules``). The message names the name or the line, never a value."""

    code = "secret_invalid"


class McpServerInvalid(InvalidInput):
    """An MCP server's name, URL, headers, command or tool list that is not accepted
    (``store.mcp_servers``). The message never quotes a header's value."""

    code = "mcp_server_invalid"


class ConflictError(OpenInspectError):
    code = "conflict"
    status = 409


class QueueFull(ConflictError):
    code = "prompt_queue_full"
    status = 429


class PromptNotCancellable(ConflictError):
    code = "prompt_not_cancellable"


class PromptRequestConflict(ConflictError):
    code = "prompt_request_conflict"


class SessionNotPromptable(ConflictError):
    code = "session_not_promptable"


class SessionBusy(ConflictError):
    """The session has a queued or running prompt, so it cannot be archived yet."""

    code = "session_busy"


class IdempotencyKeyReused(ConflictError):
    """A create reused an idempotency key of an earlier, different create."""

    code = "idempotency_key_reused"


class UserLimitReached(ConflictError):
    """A per-user limit (sessions working at once, sandboxes running at once) is reached."""

    code = "user_limit_reached"
    status = 429


class WatcherLimitReached(ConflictError):
    """A session, or one person, has as many connected clients (WebSockets) as allowed."""

    code = "watcher_limit_reached"
    status = 429


class LeaseLost(ConflictError):
    """A write guarded by a lease (``store.leases``) whose fence is no longer current: another
    server took the work over (or it was released), so this server's write is refused."""

    code = "lease_lost"


class AutomationBusy(ConflictError):
    """A run of the automation is active and its policy is ``skip``: "run now" is refused."""

    code = "automation_busy"


class SecretLimitReached(ConflictError):
    """A change that would put more secrets, or more bytes of them, in a scope than it holds."""

    code = "secret_limit_reached"


class McpServerLimitReached(ConflictError):
    """A scope that already has as many MCP servers as it may."""

    code = "mcp_server_limit_reached"


class StoreError(OpenInspectError):
    """The database failed a statement for a reason that is not the caller's (a bug, a schema
    out of date); the server log has the cause."""

    code = "store_failed"
    retryable: ClassVar[bool] = False


class StoreUnavailable(StoreError):
    """The database cannot be reached, is busy (a SQLite file locked past the busy timeout) or
    timed out; the same request may work in a moment."""

    code = "store_unavailable"
    status = 503
    retryable = True


class StoreConflict(StoreError):
    """A write collided with what is stored (a duplicate key, a missing reference) or with a
    concurrent transaction (a serialization failure, a deadlock)."""

    code = "store_conflict"
    status = 409


class GitError(OpenInspectError):
    code = "git_failed"
    status = 502


class ScmError(OpenInspectError):
    """A call to the SCM provider (GitHub) failed; the message carries GitHub's own cause."""

    code = "scm_failed"
    status = 502


class ScmAuthFailed(ScmError):
    """GitHub refused our credentials (App key, installation, or a user's OAuth token)."""

    code = "scm_auth_failed"


class ScmNotFound(ScmError):
    code = "scm_not_found"
    status = 404


class ScmRateLimited(ScmError):
    code = "scm_rate_limited"
    status = 429


class ScmUnavailable(ScmError):
    code = "scm_unavailable"
    status = 503


class LinearError(OpenInspectError):
    """A call to Linear's API failed or was refused; ``linear_code`` is Linear's own code
    (``INPUT_ERROR``, ``FORBIDDEN``…) when it gave one. Never carries a token."""

    code = "linear_failed"
    status = 502

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        linear_code: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, hint=hint, **details)
        self.linear_code = linear_code


class LinearAuthFailed(LinearError):
    """Linear refused our token or our OAuth client (revoked, expired, wrong secret)."""

    code = "linear_auth_failed"


class LinearRateLimited(LinearError):
    """Linear asks us to wait; ``retry_after_s`` is how long, when it said."""

    code = "linear_rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message, hint="Linear limits how often an app may call it; wait")
        self.retry_after_s = retry_after_s


class LinearUnavailable(LinearError):
    """No answer from Linear, or a 5xx."""

    code = "linear_unavailable"
    status = 503


class ModelError(OpenInspectError):
    code = "model_failed"
    status = 502


class ModelUnreachable(ModelError):
    """No connection to the model provider; the message names the provider and its URL."""

    code = "model_unreachable"


class LimitExceeded(OpenInspectError):
    """A prompt hit one of the agent's limits; ``limit_code`` says which."""

    code = "limit_exceeded"
    status = 429

    def __init__(self, limit_code: str, message: str, hint: str | None = None) -> None:
        super().__init__(
            message, hint=hint or "Raise the limit in the agent settings if this was expected"
        )
        self.limit_code = limit_code


class OwnerUnreachable(OpenInspectError):
    """The replica that owns a session did not answer a forwarded command in time."""

    code = "owner_unreachable"
    status = 503


class OwnerGone(OwnerUnreachable):
    """The owner a command was forwarded to lost the session (it died) before it answered."""

    code = "owner_gone"


class SessionMoved(OwnerUnreachable):
    """A command reached a replica that no longer owns the session, again and again."""

    code = "session_moved"


class SandboxError(OpenInspectError):
    code = "sandbox_failed"
    status = 503


class SandboxUnavailable(SandboxError):
    code = "sandbox_unavailable"


class SandboxAtCapacity(SandboxUnavailable):
    """The server runs its maximum of boxes (``sandbox.max_live``): a session's box may take a
    warm pool box's place (``sessions/pool.py``)."""


class SandboxBootFailed(SandboxError):
    code = "sandbox_boot_failed"


class SandboxLost(SandboxError):
    code = "sandbox_lost"


class SnapshotFailed(SandboxError):
    """A box's state could not be captured (too large, unreadable, the provider failed)."""

    code = "snapshot_failed"


class SnapshotCorrupt(SandboxError):
    """A snapshot cannot be restored: missing, its digest does not match, or its content is
    refused (a path outside the workspace, a device file, past a size cap). Never answered by
    a fresh checkout: the work it holds would be lost."""

    code = "snapshot_corrupt"


class RpcError(SandboxError):
    code = "sandbox_rpc_failed"
    status = 502
