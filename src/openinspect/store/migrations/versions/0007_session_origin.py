"""session origin and idempotent creation

Revision ID: 0007
Revises: 0006

Each session records the door it was started through (``origin``: web, cli, api, later slack,
linear…) and what outside asked for it (``origin_ref``). Sessions made before this revision are
``api``: which client made them was never recorded, and ``api`` is the door every client uses.

``idempotency_key`` (unique per creator) makes a retried create return the session the first
request made; ``create_fingerprint`` tells a retry from a different request under the same key.

From here on the database assigns each event's seq from ``sessions.last_seq`` (``store/events.py``),
so the column is brought in line with each session's log once, here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("origin", sa.String(16), nullable=False, server_default="api"))
        batch.add_column(sa.Column("origin_ref", sa.String(200), nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(128), nullable=True))
        batch.add_column(sa.Column("create_fingerprint", sa.String(64), nullable=True))
    op.create_index(
        "ux_sessions_creator_idempotency_key",
        "sessions",
        ["creator_id", "idempotency_key"],
        unique=True,
    )
    op.execute(
        "UPDATE sessions SET last_seq = COALESCE("
        "(SELECT MAX(events.seq) FROM events WHERE events.session_id = sessions.id), 0)"
    )


def downgrade() -> None:
    op.drop_index("ux_sessions_creator_idempotency_key", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("create_fingerprint")
        batch.drop_column("idempotency_key")
        batch.drop_column("origin_ref")
        batch.drop_column("origin")
