"""automations and their runs

Revision ID: 0011
Revises: 0010

``automations``: one row per automation; its trigger and conditions as JSON text, its webhook or
Sentry secret sealed (``secret_enc``), the run holding its one slot (``active_run_id``) and,
for schedules, the next fire time (``next_run_at``). ``automation_runs``: one row per firing,
unique per ``(automation_id, key)``, which is what makes a duplicate firing (500 in parallel, two
replicas on one fire time) one run.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "automations",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("repo", sa.String(2048), nullable=False),
        sa.Column("base_branch", sa.String(255), nullable=True),
        sa.Column("model", sa.String(300), nullable=True),
        sa.Column("effort", sa.String(16), nullable=True),
        sa.Column("instructions", sa.Text, nullable=False),
        sa.Column("trigger_kind", sa.String(16), nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("conditions", sa.Text, nullable=False),
        sa.Column("concurrency", sa.String(8), nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("paused_reason", sa.String(500), nullable=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("run_as", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("secret_enc", sa.Text, nullable=True),
        sa.Column("active_run_id", sa.String(40), nullable=True),
        sa.Column("next_run_at", ts, nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automations")),
    )
    op.create_index(op.f("ix_automations_run_as"), "automations", ["run_as"])
    op.create_index(op.f("ix_automations_created_by"), "automations", ["created_by"])
    op.create_index(op.f("ix_automations_next_run_at"), "automations", ["next_run_at"])
    op.create_table(
        "automation_runs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("automation_id", sa.String(40), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("payload_digest", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("session_id", sa.String(40), nullable=True),
        sa.Column("prompt_id", sa.String(40), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("origin_ref", sa.String(200), nullable=True),
        sa.Column("context", sa.Text, nullable=True),
        sa.Column("follow_up", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("fire_time", ts, nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("started_at", ts, nullable=True),
        sa.Column("finished_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_runs")),
        sa.ForeignKeyConstraint(
            ["automation_id"],
            ["automations.id"],
            name=op.f("fk_automation_runs_automation_id_automations"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "automation_id", "key", name=op.f("uq_automation_runs_automation_id_key")
        ),
    )
    op.create_index(op.f("ix_automation_runs_session_id"), "automation_runs", ["session_id"])
    op.create_index(op.f("ix_automation_runs_prompt_id"), "automation_runs", ["prompt_id"])
    op.create_index(
        "ix_automation_runs_automation_id_created_at",
        "automation_runs",
        ["automation_id", "created_at"],
    )
    op.create_index("ix_automation_runs_status", "automation_runs", ["status"])


def downgrade() -> None:
    op.drop_table("automation_runs")
    op.drop_table("automations")
