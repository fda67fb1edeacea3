"""Repo images: a repo's opt-in, and the history of its image builds

Revision ID: 0018
Revises: 0017

``repo_images``: whether a registered repo's new boxes start from an image of it.
``image_builds``: every build (queued, running, succeeded, failed, or bad once its archive
failed its check) with the commit it built, the provider's snapshot fields, the error and the
end of its boot log; ``pending`` keeps one queued or running build per repo.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "repo_images",
        sa.Column("repo_id", sa.String(40), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("updated_by", sa.String(40), nullable=True),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("repo_id", name=op.f("pk_repo_images")),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_repo_images_repo_id_repos"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "image_builds",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("repo_id", sa.String(40), nullable=False),
        sa.Column("base_branch", sa.String(255), nullable=False),
        sa.Column("commit_sha", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(40), nullable=True),
        sa.Column("pending", sa.String(40), nullable=True),
        sa.Column("sandbox_id", sa.String(40), nullable=True),
        sa.Column("provider", sa.String(40), nullable=True),
        sa.Column("key", sa.String(255), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=True),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("log", sa.Text, nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("started_at", ts, nullable=True),
        sa.Column("finished_at", ts, nullable=True),
        sa.Column("discarded_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_builds")),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_image_builds_repo_id_repos"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("pending", name=op.f("uq_image_builds_pending")),
    )
    op.create_index("ix_image_builds_repo_id_created_at", "image_builds", ["repo_id", "created_at"])
    op.create_index(op.f("ix_image_builds_sandbox_id"), "image_builds", ["sandbox_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_image_builds_sandbox_id"), table_name="image_builds")
    op.drop_index("ix_image_builds_repo_id_created_at", table_name="image_builds")
    op.drop_table("image_builds")
    op.drop_table("repo_images")
