"""Spend limits, the spend ledger and managed skills

Revision ID: 0020
Revises: 0019

``spend_limits``: USD limits by scope — ``global``, ``repo`` (key: repo id), ``automation``
(key: automation id), each a session's budget (the most specific one set applies), and
``user-daily`` (key ``*``: what each person may spend per UTC day).
``spend_ledger``: one row per model response (primary key: session and the usage event's
dedupe key), written with its ``usage`` event, so a re-sent event is never counted twice; the
session tree's root and the person who asked are kept with it, so a parent's budget and a
person's day are sums over an index.
``skills``: instruction files the team keeps, global (scope ``global``) or of one repo (scope
``repo:<repo id>``, deleted with the repo), listed to the agent and loaded when it asks.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "spend_limits",
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("usd", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(40), nullable=True),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_spend_limits")),
    )
    op.create_table(
        "spend_ledger",
        sa.Column("session_id", sa.String(40), nullable=False),
        sa.Column("dedupe_key", sa.String(128), nullable=False),
        sa.Column("root_session_id", sa.String(40), nullable=False),
        sa.Column("user_id", sa.String(40), nullable=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("session_id", "dedupe_key", name=op.f("pk_spend_ledger")),
    )
    op.create_index(op.f("ix_spend_ledger_root_session_id"), "spend_ledger", ["root_session_id"])
    op.create_index("ix_spend_ledger_user_id_day", "spend_ledger", ["user_id", "day"])
    op.create_table(
        "skills",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("scope", sa.String(48), nullable=False),
        sa.Column("repo_id", sa.String(40), nullable=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated_by", sa.String(40), nullable=True),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skills")),
        sa.ForeignKeyConstraint(
            ["repo_id"], ["repos.id"], name=op.f("fk_skills_repo_id_repos"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("scope", "name", name=op.f("uq_skills_scope_name")),
    )
    op.create_index(op.f("ix_skills_repo_id"), "skills", ["repo_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_skills_repo_id"), table_name="skills")
    op.drop_table("skills")
    op.drop_index("ix_spend_ledger_user_id_day", table_name="spend_ledger")
    op.drop_index(op.f("ix_spend_ledger_root_session_id"), table_name="spend_ledger")
    op.drop_table("spend_ledger")
    op.drop_table("spend_limits")
