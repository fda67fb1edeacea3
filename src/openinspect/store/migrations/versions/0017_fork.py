"""session forks

Revision ID: 0017
Revises: 0016

``sessions.forked_from_id`` / ``forked_from_seq``: the session and event a fork started from
(no foreign key: a fork keeps its history when its source goes). ``conversation_messages.prompt_id``:
the prompt whose run wrote the message, which is what lets a fork cut the conversation at an
event inside a session. Messages stored before this revision have none: such a session forks
only at the end of its last prompt from before it, or later (``sessions/fork.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("forked_from_id", sa.String(40), nullable=True))
    op.add_column("sessions", sa.Column("forked_from_seq", sa.Integer, nullable=True))
    op.add_column("conversation_messages", sa.Column("prompt_id", sa.String(40), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+, Postgres), not a batch's copy of the table: copying
    # ``sessions`` drops the old one, and SQLite's ON DELETE CASCADE would empty every table
    # that refers to it (conversations, participants, events…).
    op.drop_column("conversation_messages", "prompt_id")
    op.drop_column("sessions", "forked_from_seq")
    op.drop_column("sessions", "forked_from_id")
