"""Egress: the log of every request a box made through the egress proxy, and each repo's own
allow-list entries

Revision ID: 0014
Revises: 0013

``egress_requests``: one row per request, allowed or refused, written before a byte moved.
``repo_egress_allow``: a registered repo's own entries, on top of ``sandbox.egress.allow``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "egress_requests",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("session_id", sa.String(40), nullable=True),
        sa.Column("sandbox_id", sa.String(40), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("allowed", sa.Boolean, nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("message", sa.String(500), nullable=True),
        sa.Column("bytes_up", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes_down", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("duration_ms", sa.Integer, nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_egress_requests")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_egress_requests_session_id_sessions"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_egress_requests_session_created", "egress_requests", ["session_id", "created_at"]
    )
    op.create_index("ix_egress_requests_sandbox_host", "egress_requests", ["sandbox_id", "host"])
    op.create_table(
        "repo_egress_allow",
        sa.Column("repo_id", sa.String(40), nullable=False),
        sa.Column("entry", sa.String(260), nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("repo_id", "entry", name=op.f("pk_repo_egress_allow")),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_repo_egress_allow_repo_id_repos"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("repo_egress_allow")
    op.drop_index("ix_egress_requests_sandbox_host", table_name="egress_requests")
    op.drop_index("ix_egress_requests_session_created", table_name="egress_requests")
    op.drop_table("egress_requests")
