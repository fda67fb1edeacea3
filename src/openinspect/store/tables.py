"""Table definitions (SQLAlchemy Core). The Alembic migrations are the authority on the schema;
``tests/store/test_migrations.py`` checks that these definitions and the migrated schema agree."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timestamps stored as UTC and always read back timezone-aware (SQLite keeps them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


_ts = UTCDateTime()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("git_name", sa.String(200), nullable=False),
    sa.Column("git_email", sa.String(320), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", _ts, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "user_id",
        sa.String(40),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("last_used_at", _ts, nullable=True),
    sa.Column("revoked_at", _ts, nullable=True),
    sa.Column("kind", sa.String(16), nullable=False, server_default="api"),
    sa.Column("expires_at", _ts, nullable=True),
)

repos = sa.Table(
    "repos",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("default_branch", sa.String(255), nullable=False),
    sa.Column("created_by", sa.String(40), sa.ForeignKey("users.id"), nullable=True),
    sa.Column("created_at", _ts, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("repo_id", sa.String(40), sa.ForeignKey("repos.id"), nullable=True),
    sa.Column("repo_url", sa.String(2048), nullable=False),
    sa.Column("base_branch", sa.String(255), nullable=False),
    sa.Column("branch", sa.String(255), nullable=False),
    sa.Column("model", sa.String(300), nullable=False),
    sa.Column("effort", sa.String(16), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("sandbox_status", sa.String(16), nullable=False),
    sa.Column("creator_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("parent_id", sa.String(40), sa.ForeignKey("sessions.id"), nullable=True),
    sa.Column("total_cost_usd", sa.Float, nullable=False, server_default="0"),
    sa.Column("last_seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
    # Refreshed while a client has the session open, by whichever server holds its WebSocket
    # (migration 0004): the sandbox's server keeps a watched session's idle box longer.
    sa.Column("watched_at", _ts, nullable=True),
    # The door it was started through and what outside asked for it (migration 0007).
    sa.Column("origin", sa.String(16), nullable=False, server_default="api"),
    sa.Column("origin_ref", sa.String(200), nullable=True),
    # A retried create with the same key returns this session; the fingerprint of the first
    # request tells a retry from a different request under a reused key.
    sa.Column("idempotency_key", sa.String(128), nullable=True),
    sa.Column("create_fingerprint", sa.String(64), nullable=True),
    # The session and event a fork started from (migration 0020); no foreign key: a fork keeps
    # its history when its source goes.
    sa.Column("forked_from_id", sa.String(40), nullable=True),
    sa.Column("forked_from_seq", sa.Integer, nullable=True),
    sa.Index("ix_sessions_updated_at", "updated_at"),
    sa.Index("ix_sessions_status_created_at", "status", "created_at"),
    sa.Index("ux_sessions_creator_idempotency_key", "creator_id", "idempotency_key", unique=True),
)

# The agent's message history, one row per message in order (migration 0008): a model step
# appends its new messages instead of rewriting the whole conversation.
conversation_messages = sa.Table(
    "conversation_messages",
    metadata,
    sa.Column(
        "session_id",
        sa.String(40),
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", _ts, nullable=False),
    # The prompt whose run wrote it (migration 0020): where a fork may cut the conversation.
    # None for messages from before, and for those a fork was given from its source.
    sa.Column("prompt_id", sa.String(40), nullable=True),
)

participants = sa.Table(
    "participants",
    metadata,
    sa.Column(
        "session_id",
        sa.String(40),
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("joined_at", _ts, nullable=False),
)

prompts = sa.Table(
    "prompts",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "session_id",
        sa.String(40),
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("author_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("model", sa.String(300), nullable=True),
    sa.Column("effort", sa.String(16), nullable=True),
    sa.Column("client_request_id", sa.String(128), nullable=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("started_at", _ts, nullable=True),
    sa.Column("finished_at", _ts, nullable=True),
    sa.UniqueConstraint("session_id", "client_request_id"),
    sa.Index("ix_prompts_session_id_status", "session_id", "status"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column(
        "session_id",
        sa.String(40),
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("prompt_id", sa.String(40), nullable=True),
    sa.Column("ts", _ts, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    # The global feed position (migration 0006): unique, never reused, visible in order.
    sa.Column("pos", sa.BigInteger, nullable=False),
    # What a keyed event records once however often it is re-sent (migration 0010).
    sa.Column("dedupe_key", sa.String(120), nullable=True),
    sa.Index("ix_events_pos", "pos", unique=True),
    sa.Index("ux_events_session_id_dedupe_key", "session_id", "dedupe_key", unique=True),
)

sandboxes = sa.Table(
    "sandboxes",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "session_id",
        sa.String(40),
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("provider", sa.String(40), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("ready_at", _ts, nullable=True),
    sa.Column("stopped_at", _ts, nullable=True),
    sa.Column("last_heartbeat_at", _ts, nullable=True),
    sa.Index("ix_sandboxes_session_id", "session_id"),
)

# --- people and GitHub (migration 0002) ---

identities = sa.Table(
    "identities",
    metadata,
    sa.Column(
        "user_id",
        sa.String(40),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("subject", sa.String(64), nullable=False),
    sa.Column("login", sa.String(100), nullable=False),
    sa.Column("avatar_url", sa.String(2048), nullable=True),
    # AES-256-GCM (nonce ‖ ciphertext, base64) of the user's OAuth tokens; never stored in clear.
    sa.Column("access_token_enc", sa.Text, nullable=True),
    sa.Column("access_token_expires_at", _ts, nullable=True),
    sa.Column("refresh_token_enc", sa.Text, nullable=True),
    sa.Column("scopes", sa.String(500), nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
    sa.UniqueConstraint("provider", "subject"),
)

session_branches = sa.Table(
    "session_branches",
    metadata,
    sa.Column(
        "session_id",
        sa.String(40),
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("branch", sa.String(255), primary_key=True),
    sa.Column("head_sha", sa.String(64), nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
)

branch_claims = sa.Table(
    "branch_claims",
    metadata,
    # sha256 of the session's canonical repo URL: a fixed-size key for a unique index.
    sa.Column("repo_key", sa.String(64), primary_key=True),
    sa.Column("branch", sa.String(255), primary_key=True),
    # No foreign key: a claim outlives its session, so the name is never handed out again.
    sa.Column("session_id", sa.String(40), nullable=False, index=True),
    sa.Column("created_at", _ts, nullable=False),
)

pull_requests = sa.Table(
    "pull_requests",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "session_id",
        sa.String(40),
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("repo", sa.String(300), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("branch", sa.String(255), nullable=False),
    sa.Column("base", sa.String(255), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("draft", sa.Boolean, nullable=False),
    sa.Column("opened_as", sa.String(8), nullable=False),
    sa.Column("author_login", sa.String(100), nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
    sa.UniqueConstraint("repo", "number"),
    sa.UniqueConstraint("session_id", "branch"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("delivery_id", sa.String(100), primary_key=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("received_at", _ts, nullable=False),
    sa.Index("ix_webhook_deliveries_received_at", "received_at"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    # Bumped by every acquire and release: a write guarded by an older fence is refused.
    sa.Column("fence", sa.BigInteger, nullable=False),
    # Milliseconds since the epoch by the database's clock (store/leases.py: db_now_ms).
    sa.Column("acquired_at_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_at_ms", sa.BigInteger, nullable=False),
)

# --- the global event feed (migration 0006) ---

feed_head = sa.Table(
    "feed_head",
    metadata,
    # One row (id 1): the last feed position handed out. Updated inside every append's
    # transaction, so positions commit in order (see ``store/feed.py``).
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_pos", sa.BigInteger, nullable=False),
)

feed_cursors = sa.Table(
    "feed_cursors",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("pos", sa.BigInteger, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
)

# --- presence across replicas (migration 0009) ---

presence = sa.Table(
    "presence",
    metadata,
    sa.Column(
        "session_id",
        sa.String(40),
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # One connected client (a WebSocket), named by the replica that holds it.
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column(
        "user_id",
        sa.String(40),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # The replica holding the socket; it renews the row while the socket is open.
    sa.Column("holder", sa.String(200), nullable=False, index=True),
    # Milliseconds since the epoch by the database's clock (store/leases.py: db_now_ms).
    sa.Column("expires_at_ms", sa.BigInteger, nullable=False, index=True),
)

# --- automations (migration 0011) ---

automations = sa.Table(
    "automations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("repo", sa.String(2048), nullable=False),
    sa.Column("base_branch", sa.String(255), nullable=True),
    sa.Column("model", sa.String(300), nullable=True),
    sa.Column("effort", sa.String(16), nullable=True),
    sa.Column("instructions", sa.Text, nullable=False),
    sa.Column("trigger_kind", sa.String(16), nullable=False),
    # The trigger and the conditions as JSON (domain.automations): read back through pydantic.
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("conditions", sa.Text, nullable=False),
    sa.Column("concurrency", sa.String(8), nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("paused_reason", sa.String(500), nullable=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    # No foreign keys to users: an automation outlives its user, and its runs then fail
    # with a reason instead of the user's removal being refused.
    sa.Column("run_as", sa.String(40), nullable=False, index=True),
    sa.Column("created_by", sa.String(40), nullable=False, index=True),
    # AES-256-GCM (store/crypto.py) of the webhook or Sentry secret; never returned after create.
    sa.Column("secret_enc", sa.Text, nullable=True),
    # The run holding the automation's one slot (set and cleared with conditional updates, so
    # two firings never both start a run).
    sa.Column("active_run_id", sa.String(40), nullable=True),
    sa.Column("next_run_at", _ts, nullable=True, index=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
)

automation_runs = sa.Table(
    "automation_runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "automation_id",
        sa.String(40),
        sa.ForeignKey("automations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("trigger", sa.String(16), nullable=False),
    # The dedupe key: one run per (automation, key) however many firings or replicas race.
    sa.Column("key", sa.String(300), nullable=False),
    sa.Column("payload_digest", sa.String(64), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(1000), nullable=True),
    # No foreign key: the run history outlives a deleted session.
    sa.Column("session_id", sa.String(40), nullable=True, index=True),
    sa.Column("prompt_id", sa.String(40), nullable=True, index=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("origin_ref", sa.String(200), nullable=True),
    sa.Column("context", sa.Text, nullable=True),
    sa.Column("follow_up", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("fire_time", _ts, nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("started_at", _ts, nullable=True),
    sa.Column("finished_at", _ts, nullable=True),
    sa.UniqueConstraint("automation_id", "key"),
    sa.Index("ix_automation_runs_automation_id_created_at", "automation_id", "created_at"),
    sa.Index("ix_automation_runs_status", "status"),
)

# --- Slack (migration 0012) ---
# Ids are Slack's own (team T…, user U…, channel C…/D…/G…, message ts "1700000000.000100").

slack_inbox = sa.Table(
    "slack_inbox",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    # One row per delivery we accepted: ``event:<team>:<event_id>`` (Events API and Socket Mode
    # alike) or ``action:<team>:<trigger or action ts>`` for interactivity. A retry is a
    # unique-key violation, i.e. processed once.
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    # ``msg:<team>:<channel>:<ts>``: the one user message Slack sends twice (``app_mention``
    # and ``message``); the second is dropped. Null for deliveries that are not a message.
    sa.Column("msg_key", sa.String(200), nullable=True, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    # pending → done | ignored | failed; pending rows older than a minute are picked up again
    # after a crash.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("received_at", _ts, nullable=False),
    sa.Column("handled_at", _ts, nullable=True),
    sa.Index("ix_slack_inbox_status_received_at", "status", "received_at"),
)

slack_users = sa.Table(
    "slack_users",
    metadata,
    sa.Column("team_id", sa.String(32), primary_key=True),
    sa.Column("slack_user_id", sa.String(32), primary_key=True),
    # The openinspect user this Slack user acts as; null until linked.
    sa.Column(
        "user_id",
        sa.String(40),
        sa.ForeignKey("users.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    sa.Column("linked_by", sa.String(16), nullable=True),  # email | link
    sa.Column("email", sa.String(320), nullable=True),
    # App Home preferences: used when a message and its channel name no repo, and for the model.
    sa.Column("default_repo", sa.String(2048), nullable=True),
    sa.Column("model", sa.String(300), nullable=True),
    sa.Column("effort", sa.String(16), nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
)

slack_link_codes = sa.Table(
    "slack_link_codes",
    metadata,
    # sha256 of the one-time code; the code itself is only ever in the link sent to the user.
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("team_id", sa.String(32), nullable=False),
    sa.Column("slack_user_id", sa.String(32), nullable=False),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("expires_at", _ts, nullable=False),
    sa.Column("used_at", _ts, nullable=True),
    sa.Column("used_by", sa.String(40), nullable=True),
)

slack_picks = sa.Table(
    "slack_picks",
    metadata,
    # A request waiting for its author to pick the repo (the classifier was unsure).
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("team_id", sa.String(32), nullable=False),
    sa.Column("channel_id", sa.String(32), nullable=False),
    sa.Column("thread_ts", sa.String(32), nullable=False),
    sa.Column("message_ts", sa.String(32), nullable=False),
    sa.Column("channel_type", sa.String(16), nullable=False),
    sa.Column("slack_user_id", sa.String(32), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("candidates", sa.Text, nullable=False),  # JSON list of repo names
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("expires_at", _ts, nullable=False),
    sa.Column("resolved_at", _ts, nullable=True),
    sa.Column("session_id", sa.String(40), nullable=True),
)

slack_threads = sa.Table(
    "slack_threads",
    metadata,
    # One Slack thread per session and one session per thread.
    sa.Column(
        "session_id",
        sa.String(40),
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("team_id", sa.String(32), nullable=False),
    sa.Column("channel_id", sa.String(32), nullable=False),
    sa.Column("thread_ts", sa.String(32), nullable=False),
    sa.Column("channel_type", sa.String(16), nullable=False),  # im | channel | group | mpim
    sa.Column("slack_user_id", sa.String(32), nullable=False),
    # The live status message, once posted (the outbox posts it and records its ts here).
    sa.Column("status_ts", sa.String(32), nullable=True),
    # What the status message should say (JSON, integrations.slack.outbound), its version, and
    # the version Slack shows; a restart edits the message until the two agree.
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("delivered_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
    sa.UniqueConstraint("team_id", "channel_id", "thread_ts"),
)

slack_posts = sa.Table(
    "slack_posts",
    metadata,
    # The outbox: every message the app posts, written in the transaction that decided to post
    # it, delivered after. ``key`` makes the decision once; the message carries the key in its
    # metadata, so a delivery interrupted between Slack's answer and our commit finds its post
    # in the thread instead of posting again.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("session_id", sa.String(40), nullable=True, index=True),
    sa.Column("team_id", sa.String(32), nullable=False),
    sa.Column("channel_id", sa.String(32), nullable=False),
    sa.Column("thread_ts", sa.String(32), nullable=True),
    # status | final | notify | notice | ephemeral (ephemeral: to ``slack_user_id`` only)
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("slack_user_id", sa.String(32), nullable=True),
    sa.Column("body", sa.Text, nullable=False),  # JSON {text, blocks}
    sa.Column("ts", sa.String(32), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("posted_at", _ts, nullable=True),
    sa.Index("ix_slack_posts_posted_at", "posted_at"),
)

# ---------------------------------------------------------------- issue 13: GitHub bot and Linear

outbox = sa.Table(
    "outbox",
    metadata,
    # Every post to GitHub or Linear (a review, a reaction, an agent activity), written in the
    # transaction that decided it (a feed cursor's, an inbox row's), delivered after by the
    # ``outbox`` service. ``key`` makes the decision once; the post carries the key, so a
    # delivery interrupted between the provider's answer and our commit adopts what it made.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(16), nullable=False),  # github | linear
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("session_id", sa.String(40), nullable=True, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("target", sa.Text, nullable=False),  # JSON: where (a PR, an agent session)
    sa.Column("body", sa.Text, nullable=False),  # JSON: what
    sa.Column("result", sa.Text, nullable=True),  # JSON: what the provider answered
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("next_attempt_at", _ts, nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("posted_at", _ts, nullable=True),
    sa.Index("ix_outbox_posted_at_next_attempt_at", "posted_at", "next_attempt_at"),
)

inbox = sa.Table(
    "inbox",
    metadata,
    # Deliveries stored before they are acknowledged and handled after (pending → done |
    # ignored | failed), unique by the sender's delivery id: a retry is handled once, a crash
    # loses nothing (a pending row is handled again).
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("received_at", _ts, nullable=False),
    sa.Column("handled_at", _ts, nullable=True),
    sa.Index("ix_inbox_status_received_at", "status", "received_at"),
)

repo_review_settings = sa.Table(
    "repo_review_settings",
    metadata,
    # A repo's own review-bot settings; a null column falls back to settings.github.bot.
    sa.Column(
        "repo_id", sa.String(40), sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("auto_review", sa.Boolean, nullable=True),
    sa.Column("instructions", sa.Text, nullable=True),
    sa.Column("model", sa.String(300), nullable=True),
    sa.Column("updated_by", sa.String(40), nullable=True),
    sa.Column("updated_at", _ts, nullable=False),
)

github_feedback = sa.Table(
    "github_feedback",
    metadata,
    # Each GitHub review or comment on a session's pull request, turned into a prompt (or
    # refused) once: ``review:<repo>:<id>`` / ``comment:<repo>:<id>``.
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("repo", sa.String(255), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("session_id", sa.String(40), nullable=True),
    sa.Column("prompt_id", sa.String(40), nullable=True),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("created_at", _ts, nullable=False),
    sa.Index("ix_github_feedback_repo_number", "repo", "number"),
)

linear_installs = sa.Table(
    "linear_installs",
    metadata,
    # One Linear workspace the agent is installed in; tokens sealed (store.crypto).
    sa.Column("org_id", sa.String(64), primary_key=True),
    sa.Column("org_name", sa.String(255), nullable=False),
    sa.Column("app_user_id", sa.String(64), nullable=True),
    sa.Column("access_token", sa.Text, nullable=False),
    sa.Column("refresh_token", sa.Text, nullable=True),
    sa.Column("expires_at", _ts, nullable=True),
    sa.Column("scopes", sa.String(255), nullable=False),
    sa.Column("installed_by", sa.String(40), nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
)

linear_sessions = sa.Table(
    "linear_sessions",
    metadata,
    # A Linear agent session and the openinspect session it drives (null while its repo is
    # being asked for); ``state`` is owned by integrations.linear.outbound.
    sa.Column("agent_session_id", sa.String(64), primary_key=True),
    sa.Column("org_id", sa.String(64), nullable=False),
    sa.Column(
        "session_id",
        sa.String(40),
        sa.ForeignKey("sessions.id", ondelete="SET NULL"),
        nullable=True,
        unique=True,
    ),
    sa.Column("issue_id", sa.String(64), nullable=True),
    sa.Column("issue_identifier", sa.String(32), nullable=True),
    sa.Column("issue_url", sa.Text, nullable=True),
    sa.Column("linear_user_id", sa.String(64), nullable=True),
    sa.Column("state", sa.Text, nullable=False, server_default="{}"),
    sa.Column("status", sa.String(16), nullable=False),  # active | awaiting_repo | stopped | ended
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
)

egress_requests = sa.Table(
    "egress_requests",
    metadata,
    # Every request a box made through the egress proxy, allowed or refused, written before a
    # byte moved (migration 0014); the byte counts and duration when it ended.
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "session_id",
        sa.String(40),
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=True,
    ),
    sa.Column("sandbox_id", sa.String(40), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("allowed", sa.Boolean, nullable=False),
    sa.Column("code", sa.String(32), nullable=False),  # allowed, or why it was refused
    sa.Column("status", sa.Integer, nullable=False),  # what the proxy answered
    sa.Column("message", sa.String(500), nullable=True),
    sa.Column("bytes_up", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("bytes_down", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("duration_ms", sa.Integer, nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Index("ix_egress_requests_session_created", "session_id", "created_at"),
    sa.Index("ix_egress_requests_sandbox_host", "sandbox_id", "host"),
)

repo_egress_allow = sa.Table(
    "repo_egress_allow",
    metadata,
    # A registered repo's own egress allow-list entries, on top of sandbox.egress.allow.
    sa.Column(
        "repo_id", sa.String(40), sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("entry", sa.String(260), primary_key=True),
    sa.Column("created_by", sa.String(40), nullable=True),
    sa.Column("created_at", _ts, nullable=False),
)


# --- snapshots (migration 0015) ---

snapshots = sa.Table(
    "snapshots",
    metadata,
    # A box's workspace as a provider captured it; ``key`` is the provider's own name for it,
    # ``sha256`` its digest as written, checked before a restore. The newest is restored.
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "session_id",
        sa.String(40),
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("sandbox_id", sa.String(40), nullable=False),
    sa.Column("provider", sa.String(40), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(16), nullable=False),  # prompt | idle
    sa.Column("created_at", _ts, nullable=False),
    sa.Index("ix_snapshots_session_id_created_at", "session_id", "created_at"),
)


# --- secrets (migration 0016) ---

secrets = sa.Table(
    "secrets",
    metadata,
    # A repo secret (store/secrets.py): an environment variable of every box (scope "global")
    # or of one repo's boxes (scope "repo:<repo id>"). The value is AES-256-GCM (store/crypto.py)
    # under the purpose "secret:<scope>:<name>", and never leaves the control plane but into a box.
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("scope", sa.String(48), nullable=False),
    sa.Column(
        "repo_id",
        sa.String(40),
        sa.ForeignKey("repos.id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(40), nullable=True),
    sa.Column("updated_by", sa.String(40), nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
    sa.UniqueConstraint("scope", "name"),
)


# --- repo images (migration 0018) ---

repo_images = sa.Table(
    "repo_images",
    metadata,
    # Whether a registered repo's boxes start from an image of it (store/images.py).
    sa.Column(
        "repo_id", sa.String(40), sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("updated_by", sa.String(40), nullable=True),
    sa.Column("updated_at", _ts, nullable=False),
)

image_builds = sa.Table(
    "image_builds",
    metadata,
    # One build of a repo's image: a box booted in build mode (setup.sh once), then captured as
    # a provider snapshot (provider/key/sha256/size_bytes). ``pending`` is the repo's id while
    # the build is queued or running, else null: one pending build per repo (a unique key).
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "repo_id", sa.String(40), sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("base_branch", sa.String(255), nullable=False),
    sa.Column("commit_sha", sa.String(64), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # queued|running|succeeded|failed|bad
    sa.Column("trigger", sa.String(16), nullable=False),  # manual | first | moved
    sa.Column("requested_by", sa.String(40), nullable=True),
    sa.Column("pending", sa.String(40), nullable=True, unique=True),
    sa.Column("sandbox_id", sa.String(40), nullable=True, index=True),
    sa.Column("provider", sa.String(40), nullable=True),
    sa.Column("key", sa.String(255), nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=True),
    sa.Column("error", sa.String(1000), nullable=True),
    sa.Column("log", sa.Text, nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("started_at", _ts, nullable=True),
    sa.Column("finished_at", _ts, nullable=True),
    sa.Column("discarded_at", _ts, nullable=True),
    sa.Index("ix_image_builds_repo_id_created_at", "repo_id", "created_at"),
)

# --- warm pool (migration 0019) ---

repo_pools = sa.Table(
    "repo_pools",
    metadata,
    # How many ready boxes each replica keeps for a registered repo (sessions/pool.py); no row
    # (or 0) is no pool.
    sa.Column(
        "repo_id", sa.String(40), sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("updated_by", sa.String(40), nullable=True),
    sa.Column("updated_at", _ts, nullable=False),
)


# --- spend limits, the spend ledger and skills (migration 0020) ---

spend_limits = sa.Table(
    "spend_limits",
    metadata,
    # scope: global | repo | automation | user-daily; key: the repo's or automation's id, or
    # "*" (global, user-daily). A row is a limit in US dollars (store/spend.py).
    sa.Column("scope", sa.String(16), primary_key=True),
    sa.Column("key", sa.String(40), primary_key=True),
    sa.Column("usd", sa.Float, nullable=False),
    sa.Column("updated_by", sa.String(40), nullable=True),
    sa.Column("updated_at", _ts, nullable=False),
)

spend_ledger = sa.Table(
    "spend_ledger",
    metadata,
    # One row per model response, written with its usage event (store/changes.py): keyed like
    # the event, so a re-sent one is not counted again. No foreign keys: spend outlives a
    # deleted session or user (a person's day still counts it).
    sa.Column("session_id", sa.String(40), primary_key=True),
    sa.Column("dedupe_key", sa.String(128), primary_key=True),
    sa.Column("root_session_id", sa.String(40), nullable=False, index=True),
    sa.Column("user_id", sa.String(40), nullable=True),
    sa.Column("day", sa.String(10), nullable=False),  # UTC, YYYY-MM-DD
    sa.Column("cost_usd", sa.Float, nullable=False),
    sa.Column("created_at", _ts, nullable=False),
    sa.Index("ix_spend_ledger_user_id_day", "user_id", "day"),
)

skills = sa.Table(
    "skills",
    metadata,
    # A managed skill (store/skills.py): instructions the team keeps, for every session (scope
    # "global") or one repo's (scope "repo:<repo id>").
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("scope", sa.String(48), nullable=False),
    sa.Column(
        "repo_id",
        sa.String(40),
        sa.ForeignKey("repos.id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("description", sa.String(500), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("updated_by", sa.String(40), nullable=True),
    sa.Column("updated_at", _ts, nullable=False),
    sa.UniqueConstraint("scope", "name"),
)


# --- MCP servers (migration 0021) ---

mcp_servers = sa.Table(
    "mcp_servers",
    metadata,
    # An MCP server the agent's tools come from (store/mcp_servers.py), global (scope "global")
    # or of one repo (scope "repo:<repo id>"). An http server is called by the control plane with
    # ``headers`` (AES-256-GCM of their JSON under "mcp:<scope>:<name>", never returned, never
    # sent to a box); a stdio server's ``command`` (a JSON argv) runs inside the box.
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("scope", sa.String(48), nullable=False),
    sa.Column(
        "repo_id",
        sa.String(40),
        sa.ForeignKey("repos.id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("transport", sa.String(8), nullable=False),
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("headers", sa.Text, nullable=True),
    sa.Column("header_names", sa.JSON, nullable=False),
    sa.Column("command", sa.JSON, nullable=True),
    sa.Column("tools", sa.JSON, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_by", sa.String(40), nullable=True),
    sa.Column("updated_by", sa.String(40), nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
    sa.UniqueConstraint("scope", "name"),
)
