"""session forks

Revision ID: 0020
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

revision = "0020"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("forked_from_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("forked_from_seq", sa.Integer, nullable=True))
    with op.batch_alter_table("conversation_messages") as batch:
        batch.add_column(sa.Column("prompt_id", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation_messages") as batch:
        batch.drop_column("prompt_id")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("forked_from_seq")
        batch.drop_column("forked_from_id")
