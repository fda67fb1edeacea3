"""presence: who watches a session, shared by every replica

Revision ID: 0009
Revises: 0008

One row per connected client (``session_id``, ``client_id``): whose it is, the name shown, its
status, the replica that holds its socket (``holder``) and when the row runs out
(``expires_at_ms``, milliseconds since the epoch by the database's clock). Each replica renews
its own clients' rows, so a replica that dies takes its watchers with it (``store/presence.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "presence",
        sa.Column("session_id", sa.String(40), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("session_id", "client_id", name=op.f("pk_presence")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_presence_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_presence_user_id_users"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_presence_user_id"), "presence", ["user_id"])
    op.create_index(op.f("ix_presence_holder"), "presence", ["holder"])
    op.create_index(op.f("ix_presence_expires_at_ms"), "presence", ["expires_at_ms"])


def downgrade() -> None:
    op.drop_table("presence")
