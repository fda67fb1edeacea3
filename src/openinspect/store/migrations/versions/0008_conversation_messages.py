"""conversation messages: the agent's history one row per message, appended

Revision ID: 0008
Revises: 0007

``conversations`` held a session's whole message history as one JSON array, rewritten after every
model step, so a prompt's writes grew with the square of its steps. ``conversation_messages``
holds one row per message at its ``position``; a step appends its new messages
(``store/sessions.py``). Each stored conversation is split into its messages here, in order, and
the old table dropped; the downgrade joins them back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BATCH = 500


def _message_rows(session_id: str, text: str, at: datetime) -> list[dict[str, object]]:
    messages = json.loads(text)
    if not isinstance(messages, list):
        raise ValueError(f"the conversation of {session_id} is not a list of messages")
    return [
        {
            "session_id": session_id,
            "position": i,
            "message": json.dumps(m, ensure_ascii=False, separators=(",", ":")),
            "created_at": at,
        }
        for i, m in enumerate(messages)
    ]


def upgrade() -> None:
    messages = op.create_table(
        "conversation_messages",
        sa.Column("session_id", sa.String(40), nullable=False),
        sa.Column("position", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_conversation_messages_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "position", name=op.f("pk_conversation_messages")),
    )
    conn = op.get_bind()
    old = sa.table(
        "conversations",
        sa.column("session_id", sa.String),
        sa.column("messages", sa.Text),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    ids = conn.execute(sa.select(old.c.session_id).order_by(old.c.session_id)).scalars().all()
    for session_id in ids:  # one conversation in memory at a time
        row = conn.execute(
            sa.select(old.c.messages, old.c.updated_at).where(old.c.session_id == session_id)
        ).one()
        at = row.updated_at or datetime.now(UTC)
        rows = _message_rows(session_id, row.messages, at)
        for i in range(0, len(rows), _BATCH):
            conn.execute(messages.insert(), rows[i : i + _BATCH])
    op.drop_table("conversations")


def downgrade() -> None:
    old = op.create_table(
        "conversations",
        sa.Column("session_id", sa.String(40), nullable=False),
        sa.Column("messages", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_conversations_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_conversations")),
    )
    conn = op.get_bind()
    rows = sa.table(
        "conversation_messages",
        sa.column("session_id", sa.String),
        sa.column("position", sa.Integer),
        sa.column("message", sa.Text),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    ids = conn.execute(sa.select(rows.c.session_id).distinct()).scalars().all()
    for session_id in sorted(ids):
        found = conn.execute(
            sa.select(rows.c.message, rows.c.created_at)
            .where(rows.c.session_id == session_id)
            .order_by(rows.c.position)
        ).all()
        conn.execute(
            old.insert().values(
                session_id=session_id,
                messages="[" + ",".join(r.message for r in found) + "]",
                updated_at=max(r.created_at for r in found),
            )
        )
    op.drop_table("conversation_messages")
