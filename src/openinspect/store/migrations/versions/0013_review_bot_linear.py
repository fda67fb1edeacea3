"""GitHub review bot and Linear: the outbox, the inbox, repo review settings, PR feedback,
Linear installs and agent sessions

Revision ID: 0013
Revises: 0012

``outbox``: every post to GitHub or Linear, decided once by key and delivered after, adopted
rather than posted again after a crash. ``inbox``: deliveries stored before they are
acknowledged. ``repo_review_settings``: a repo's own review-bot settings.
``github_feedback``: review feedback on a session's pull request, turned into a prompt once.
``linear_installs``: the workspaces the Linear agent is installed in (tokens sealed).
``linear_sessions``: Linear agent sessions and the sessions they drive.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("session_id", sa.String(40), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("next_attempt_at", ts, nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("posted_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_key")),
    )
    op.create_index(op.f("ix_outbox_session_id"), "outbox", ["session_id"])
    op.create_index(
        "ix_outbox_posted_at_next_attempt_at", "outbox", ["posted_at", "next_attempt_at"]
    )
    op.create_table(
        "inbox",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("received_at", ts, nullable=False),
        sa.Column("handled_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint("key", name=op.f("uq_inbox_key")),
    )
    op.create_index("ix_inbox_status_received_at", "inbox", ["status", "received_at"])
    op.create_table(
        "repo_review_settings",
        sa.Column("repo_id", sa.String(40), nullable=False),
        sa.Column("auto_review", sa.Boolean, nullable=True),
        sa.Column("instructions", sa.Text, nullable=True),
        sa.Column("model", sa.String(300), nullable=True),
        sa.Column("updated_by", sa.String(40), nullable=True),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("repo_id", name=op.f("pk_repo_review_settings")),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_repo_review_settings_repo_id_repos"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "github_feedback",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("repo", sa.String(255), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("session_id", sa.String(40), nullable=True),
        sa.Column("prompt_id", sa.String(40), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_github_feedback")),
    )
    op.create_index("ix_github_feedback_repo_number", "github_feedback", ["repo", "number"])
    op.create_table(
        "linear_installs",
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("org_name", sa.String(255), nullable=False),
        sa.Column("app_user_id", sa.String(64), nullable=True),
        sa.Column("access_token", sa.Text, nullable=False),
        sa.Column("refresh_token", sa.Text, nullable=True),
        sa.Column("expires_at", ts, nullable=True),
        sa.Column("scopes", sa.String(255), nullable=False),
        sa.Column("installed_by", sa.String(40), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_linear_installs")),
    )
    op.create_table(
        "linear_sessions",
        sa.Column("agent_session_id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(40), nullable=True),
        sa.Column("issue_id", sa.String(64), nullable=True),
        sa.Column("issue_identifier", sa.String(32), nullable=True),
        sa.Column("issue_url", sa.Text, nullable=True),
        sa.Column("linear_user_id", sa.String(64), nullable=True),
        sa.Column("state", sa.Text, nullable=False, server_default="{}"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("agent_session_id", name=op.f("pk_linear_sessions")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_linear_sessions_session_id_sessions"),
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("session_id", name=op.f("uq_linear_sessions_session_id")),
    )


def downgrade() -> None:
    op.drop_table("linear_sessions")
    op.drop_table("linear_installs")
    op.drop_table("github_feedback")
    op.drop_table("repo_review_settings")
    op.drop_table("inbox")
    op.drop_table("outbox")
