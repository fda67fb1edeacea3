"""event feed: a global position for every stored event, and named consumer cursors

Revision ID: 0006
Revises: 0005

``events.pos`` orders all durable events of all sessions; ``feed_head`` holds the last position
handed out (one row, updated in every append's transaction so that positions commit in order);
``feed_cursors`` holds each named consumer's committed position. See ``store/feed.py``.

Existing events are numbered by time, keeping each session's own order: a session's events are
sorted by the running maximum of their ``ts`` in ``seq`` order (so a clock step backwards never
puts a later seq before an earlier one), ties broken by session id and seq.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BACKFILL = """
UPDATE events SET pos = numbered.rn
FROM (
    SELECT session_id, seq, ROW_NUMBER() OVER (ORDER BY mts, session_id, seq) AS rn
    FROM (
        SELECT session_id, seq, MAX(ts) OVER (PARTITION BY session_id ORDER BY seq) AS mts
        FROM events
    ) AS running
) AS numbered
WHERE events.session_id = numbered.session_id AND events.seq = numbered.seq
"""

# SQLite only (writers are serialised there): an append reads ``last_pos + 1`` in its insert and
# this moves the head along, so an append stays one statement (``store.feed.insert_event``).
_SQLITE_TRIGGER = """
CREATE TRIGGER events_feed_head AFTER INSERT ON events
BEGIN
    UPDATE feed_head SET last_pos = NEW.pos WHERE id = 1 AND last_pos < NEW.pos;
END
"""


def upgrade() -> None:
    op.create_table(
        "feed_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_pos", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_head")),
    )
    op.create_table(
        "feed_cursors",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("pos", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_feed_cursors")),
    )
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("pos", sa.BigInteger, nullable=True))
    op.execute(_BACKFILL)
    op.execute("INSERT INTO feed_head (id, last_pos) SELECT 1, COALESCE(MAX(pos), 0) FROM events")
    with op.batch_alter_table("events") as batch:
        batch.alter_column("pos", existing_type=sa.BigInteger, nullable=False)
    op.create_index(op.f("ix_events_pos"), "events", ["pos"], unique=True)
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS events_feed_head")
    op.drop_index(op.f("ix_events_pos"), table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("pos")
    op.drop_table("feed_cursors")
    op.drop_table("feed_head")
