"""Store records for tests and benches that need a row to hang things on."""

from __future__ import annotations

from openinspect.domain.events import utcnow
from openinspect.domain.ids import new_id
from openinspect.domain.models import Author, Prompt, Session


def session_record(session_id: str, creator_id: str, repo_url: str = "/r") -> Session:
    """A freshly created session (status ``created``, no sandbox, empty log)."""
    now = utcnow()
    return Session(
        id=session_id,
        title="t",
        repo_url=repo_url,
        repo_id=None,
        base_branch="main",
        branch=f"openinspect/{session_id.removeprefix('ses_')[:8]}",
        model="scripted:x",
        effort=None,
        status="created",
        sandbox_status="none",
        creator_id=creator_id,
        parent_id=None,
        total_cost_usd=0.0,
        last_seq=0,
        created_at=now,
        updated_at=now,
    )


def prompt_record(session_id: str, author: Author, content: str = "fix it") -> Prompt:
    """A new queued prompt (no model or effort override, not started)."""
    return Prompt(
        id=new_id("prm"),
        session_id=session_id,
        author=author,
        content=content,
        model=None,
        effort=None,
        client_request_id=None,
        status="queued",
        error_code=None,
        error_message=None,
        created_at=utcnow(),
        started_at=None,
        finished_at=None,
    )
