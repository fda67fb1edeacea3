"""MCP servers

Revision ID: 0021
Revises: 0020

``mcp_servers``: the MCP servers whose tools the agent gets, global (scope ``global``) or of one
repo (scope ``repo:<repo id>``, deleted with the repo). An http server's headers (its credential)
are sealed with AES-256-GCM under a purpose naming its scope and name; a stdio server's command
runs inside the box.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "mcp_servers",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("scope", sa.String(48), nullable=False),
        sa.Column("repo_id", sa.String(40), nullable=True),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("headers", sa.Text, nullable=True),
        sa.Column("header_names", sa.JSON, nullable=False),
        sa.Column("command", sa.JSON, nullable=True),
        sa.Column("tools", sa.JSON, nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.Column("updated_by", sa.String(40), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mcp_servers")),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_mcp_servers_repo_id_repos"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("scope", "name", name=op.f("uq_mcp_servers_scope_name")),
    )
    op.create_index(op.f("ix_mcp_servers_repo_id"), "mcp_servers", ["repo_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_mcp_servers_repo_id"), table_name="mcp_servers")
    op.drop_table("mcp_servers")
