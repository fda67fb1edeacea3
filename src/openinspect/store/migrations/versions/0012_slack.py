"""Slack: the inbox, linked users, link codes, repo picks, threads and the outbox

Revision ID: 0012
Revises: 0011

``slack_inbox``: every delivery accepted (Events API, Socket Mode, interactivity), unique by
Slack's event id, and by channel + ts for the message Slack sends twice; stored before it is
acknowledged and handled after, so a crash loses nothing and a retry is handled once.
``slack_users``: a Slack user's link to an openinspect user and their App Home preferences.
``slack_link_codes``: one-time codes of the web link flow (hashed). ``slack_picks``: requests
waiting for their author to pick a repo. ``slack_threads``: the thread of each Slack-started
session and the state of its status message. ``slack_posts``: the outbox of messages to post.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "slack_inbox",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("msg_key", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("received_at", ts, nullable=False),
        sa.Column("handled_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_inbox")),
        sa.UniqueConstraint("key", name=op.f("uq_slack_inbox_key")),
        sa.UniqueConstraint("msg_key", name=op.f("uq_slack_inbox_msg_key")),
    )
    op.create_index("ix_slack_inbox_status_received_at", "slack_inbox", ["status", "received_at"])
    op.create_table(
        "slack_users",
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("slack_user_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(40), nullable=True),
        sa.Column("linked_by", sa.String(16), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("default_repo", sa.String(2048), nullable=True),
        sa.Column("model", sa.String(300), nullable=True),
        sa.Column("effort", sa.String(16), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("team_id", "slack_user_id", name=op.f("pk_slack_users")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_slack_users_user_id_users"),
            ondelete="SET NULL",
        ),
    )
    op.create_index(op.f("ix_slack_users_user_id"), "slack_users", ["user_id"])
    op.create_table(
        "slack_link_codes",
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("slack_user_id", sa.String(32), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=False),
        sa.Column("used_at", ts, nullable=True),
        sa.Column("used_by", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_slack_link_codes")),
    )
    op.create_table(
        "slack_picks",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=False),
        sa.Column("message_ts", sa.String(32), nullable=False),
        sa.Column("channel_type", sa.String(16), nullable=False),
        sa.Column("slack_user_id", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("candidates", sa.Text, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=False),
        sa.Column("resolved_at", ts, nullable=True),
        sa.Column("session_id", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_picks")),
    )
    op.create_table(
        "slack_threads",
        sa.Column("session_id", sa.String(40), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=False),
        sa.Column("channel_type", sa.String(16), nullable=False),
        sa.Column("slack_user_id", sa.String(32), nullable=False),
        sa.Column("status_ts", sa.String(32), nullable=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("delivered_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_slack_threads")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_slack_threads_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "team_id",
            "channel_id",
            "thread_ts",
            name=op.f("uq_slack_threads_team_id_channel_id_thread_ts"),
        ),
    )
    op.create_table(
        "slack_posts",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("session_id", sa.String(40), nullable=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("slack_user_id", sa.String(32), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("ts", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("posted_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_posts")),
        sa.UniqueConstraint("key", name=op.f("uq_slack_posts_key")),
    )
    op.create_index(op.f("ix_slack_posts_session_id"), "slack_posts", ["session_id"])
    op.create_index("ix_slack_posts_posted_at", "slack_posts", ["posted_at"])


def downgrade() -> None:
    op.drop_table("slack_posts")
    op.drop_table("slack_threads")
    op.drop_table("slack_picks")
    op.drop_table("slack_link_codes")
    op.drop_table("slack_users")
    op.drop_table("slack_inbox")
