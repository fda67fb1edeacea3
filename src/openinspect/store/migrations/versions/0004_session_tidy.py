"""session tidy: when someone last watched a session, and an index for the draft sweep

Revision ID: 0004
Revises: 0003

``sessions.watched_at`` is refreshed by whichever server holds a client's WebSocket, so the server
that runs the session's sandbox knows, without shared memory, that someone is watching (idle
sandboxes are kept longer then). The ``(status, created_at)`` index serves the sweep of abandoned
drafts (``status = 'created'`` and old).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("watched_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_sessions_status_created_at"), "sessions", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sessions_status_created_at"), table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("watched_at")
