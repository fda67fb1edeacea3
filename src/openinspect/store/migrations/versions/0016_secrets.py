"""Repo secrets

Revision ID: 0016
Revises: 0015

``secrets``: environment variables for boxes, global (scope ``global``) or of one repo (scope
``repo:<repo id>``, deleted with the repo), each value sealed with AES-256-GCM under a purpose
naming its scope and name.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "secrets",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("scope", sa.String(48), nullable=False),
        sa.Column("repo_id", sa.String(40), nullable=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.Column("updated_by", sa.String(40), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secrets")),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_secrets_repo_id_repos"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("scope", "name", name=op.f("uq_secrets_scope_name")),
    )
    op.create_index(op.f("ix_secrets_repo_id"), "secrets", ["repo_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_secrets_repo_id"), table_name="secrets")
    op.drop_table("secrets")
