"""branch claims: which session owns each branch name of a repo, for good

Revision ID: 0003
Revises: 0002

Existing sessions keep what they had: each session's own branch is claimed by it, and every branch
a session pushed (recorded in ``session_branches`` or, for older sessions, only as ``git-push``
events) is claimed by the first session that pushed it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def _repo_key(repo_url: str) -> str:
    return hashlib.sha256(repo_url.encode()).hexdigest()


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite hands back text
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def upgrade() -> None:
    op.create_table(
        "branch_claims",
        sa.Column("repo_key", sa.String(64), nullable=False),
        sa.Column("branch", sa.String(255), nullable=False),
        sa.Column("session_id", sa.String(40), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("repo_key", "branch", name=op.f("pk_branch_claims")),
    )
    op.create_index(op.f("ix_branch_claims_session_id"), "branch_claims", ["session_id"])
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    sessions = sa.table(
        "sessions",
        sa.column("id"),
        sa.column("repo_url"),
        sa.column("branch"),
        sa.column("created_at"),
    )
    pushed = sa.table(
        "session_branches",
        sa.column("session_id"),
        sa.column("branch"),
        sa.column("head_sha"),
        sa.column("created_at"),
        sa.column("updated_at"),
    )
    events = sa.table(
        "events", sa.column("session_id"), sa.column("type"), sa.column("ts"), sa.column("data")
    )
    repos = {
        row.id: row.repo_url for row in conn.execute(sa.select(sessions.c.id, sessions.c.repo_url))
    }
    known = {
        (row.session_id, row.branch)
        for row in conn.execute(sa.select(pushed.c.session_id, pushed.c.branch))
    }
    # Older sessions pushed before session_branches existed: their git-push events say what.
    for row in conn.execute(
        sa.select(events.c.session_id, events.c.ts, events.c.data)
        .where(events.c.type == "git-push")
        .order_by(events.c.ts)
    ):
        branch = json.loads(row.data).get("branch")
        if not branch or (row.session_id, branch) in known:
            continue
        known.add((row.session_id, branch))
        ts = _aware(row.ts)
        conn.execute(
            pushed.insert().values(
                session_id=row.session_id,
                branch=branch,
                head_sha=json.loads(row.data).get("sha"),
                created_at=ts,
                updated_at=ts,
            )
        )
    # The first claimant wins: a session's own branch from its creation, then pushed branches.
    candidates: list[tuple[datetime, str, str]] = [
        (_aware(row.created_at), row.id, row.branch)
        for row in conn.execute(sa.select(sessions.c.id, sessions.c.branch, sessions.c.created_at))
    ]
    candidates += [
        (_aware(row.created_at), row.session_id, row.branch)
        for row in conn.execute(
            sa.select(pushed.c.session_id, pushed.c.branch, pushed.c.created_at)
        )
    ]
    claims = sa.table(
        "branch_claims",
        sa.column("repo_key"),
        sa.column("branch"),
        sa.column("session_id"),
        sa.column("created_at"),
    )
    taken: set[tuple[str, str]] = set()
    for created_at, session_id, branch in sorted(candidates):
        repo_url = repos.get(session_id)
        if repo_url is None:
            continue
        key = (_repo_key(repo_url), branch)
        if key in taken:
            continue
        taken.add(key)
        conn.execute(
            claims.insert().values(
                repo_key=key[0], branch=branch, session_id=session_id, created_at=created_at
            )
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_branch_claims_session_id"), table_name="branch_claims")
    op.drop_table("branch_claims")
