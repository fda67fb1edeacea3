"""events keyed for once-only appends; the feed head moved by the append, not a trigger

Revision ID: 0010
Revises: 0009

``events.dedupe_key`` (unique per session, null for most events) names what an event records
once, whatever retries re-send it: a ``usage`` event per model response (``usage:<prompt>:<step>``),
which is also what adds the response's cost to ``sessions.total_cost_usd`` in the same
transaction (``store/events.py``). A re-sent keyed event is not stored, or counted, again.

The SQLite trigger ``events_feed_head`` (0006) goes: appends now reserve their positions on the
head row first, on both databases (``store.feed.reserve``), so the trigger had nothing left to do
but cost an extra statement per inserted row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_SQLITE_TRIGGER = """
CREATE TRIGGER events_feed_head AFTER INSERT ON events
BEGIN
    UPDATE feed_head SET last_pos = NEW.pos WHERE id = 1 AND last_pos < NEW.pos;
END
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS events_feed_head")
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("dedupe_key", sa.String(120), nullable=True))
    op.create_index(
        "ux_events_session_id_dedupe_key", "events", ["session_id", "dedupe_key"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ux_events_session_id_dedupe_key", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("dedupe_key")
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_SQLITE_TRIGGER)
