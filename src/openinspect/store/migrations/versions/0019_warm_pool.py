"""Warm pool

Revision ID: 0019
Revises: 0018

``repo_pools``: per registered repo, how many ready boxes each replica keeps for it (deleted
with the repo). Pooled boxes themselves are not rows: a box gets its ``sandboxes`` row when a
session claims it, in the transaction of the session's ``sandbox-status`` event.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repo_pools",
        sa.Column("repo_id", sa.String(40), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("updated_by", sa.String(40), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("repo_id", name=op.f("pk_repo_pools")),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_repo_pools_repo_id_repos"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("repo_pools")
