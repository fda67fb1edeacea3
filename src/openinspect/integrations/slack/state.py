"""What a Slack thread's status message says, folded from its session's events.

:class:`ThreadState` is the JSON kept in ``slack_threads.state``; :func:`apply` moves it on by
one durable event (pure: no I/O, no clock), so the projection (``outbound.py``) and its tests
agree on what every event means. Text from the agent or its tools is kept raw here (cut) and
escaped only when rendered (``render.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from openinspect.domain.events import Event
from openinspect.integrations.steps import cut, one_line, tool_detail

Status = Literal["waiting", "queued", "running", "finished", "failed", "stopped"]
LAST_TEXT_MAX_CHARS = 3_000
"""The agent's last text of a prompt, as kept (the final message shows ~2,800 of it)."""
STEP_ARG_MAX_CHARS = 120
ERROR_MAX_CHARS = 300
QUEUED_MAX = 50
STARTING = "Starting the sandbox"
THINKING = "Thinking"


class ThreadState(BaseModel):
    """The status of one session as its Slack thread shows it (across its prompts)."""

    model_config = ConfigDict(extra="ignore")

    repo: str = ""
    title: str = ""
    branch: str = ""
    prompt_id: str | None = None
    """The prompt the status is about: the running one, else the last one that ran."""
    status: Status = "waiting"
    step: str = ""
    """Our words: "Thinking", "Running `bash`"…"""
    detail: str = ""
    """What the step works on, from the agent (a command, a path): escaped when shown."""
    tool: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    prompt_cost_usd: float = 0.0
    cost_usd: float = 0.0
    """The session's total."""
    sandbox: str | None = None
    pushed: bool = False
    pr_url: str | None = None
    pr_number: int | None = None
    pr_state: str | None = None
    last_text: str = ""
    error: str | None = None
    queued: list[str] = Field(default_factory=list)
    """Prompts queued and not started yet, oldest first: a prompt that ends while one of them
    waits was superseded by it."""

    @property
    def running(self) -> bool:
        return self.status in ("queued", "running")


def repo_label(repo_url: str) -> str:
    """``owner/name`` of a hosted repo URL; a local path's last part."""
    trimmed = repo_url.rstrip("/").removesuffix(".git")
    parts = [p for p in trimmed.replace(":", "/").split("/") if p]
    if "://" in repo_url and len(parts) >= 3:
        return "/".join(parts[-2:])
    return parts[-1] if parts else repo_url


_STEPS = {
    "bash": "Running `bash`",
    "write": "Writing",
    "edit": "Editing",
    "read": "Reading",
    "glob": "Searching for",
    "grep": "Searching for",
}


def tool_step(tool: str, args: dict[str, object]) -> tuple[str, str]:
    """The step line of a tool call and its detail (the argument, cut to one line)."""
    if tool in _STEPS:
        return _STEPS[tool], tool_detail(tool, args, STEP_ARG_MAX_CHARS)
    if tool == "create_pull_request":
        return "Opening a pull request", ""
    if tool == "notify":
        return "Notifying Slack", ""
    return f"Running `{cut(tool, 40)}`", ""


def _idle_step(state: ThreadState) -> str:
    return THINKING if state.sandbox == "ready" else STARTING


def apply(state: ThreadState, event: Event) -> bool:
    """Fold ``event`` into ``state`` in place; True when the status changed."""
    before = state.model_dump()
    if event.type in ("prompt-started", "prompt-finished", "agent-thinking", "agent-text"):
        state.detail = ""
    match event.type:
        case "session-created":
            state.repo = state.repo or repo_label(event.repo_url)
            state.branch, state.title = event.branch, event.title
        case "session-updated":
            if event.title is not None:
                state.title = event.title
            if event.total_cost_usd is not None:
                state.cost_usd = event.total_cost_usd
        case "prompt-queued":
            if event.prompt_id and event.prompt_id not in state.queued:
                state.queued = [*state.queued, event.prompt_id][-QUEUED_MAX:]
            if not state.running:
                state.status, state.step = "queued", "Queued"
        case "prompt-cancelled":
            state.queued = [p for p in state.queued if p != event.prompt_id]
            if state.status == "queued" and not state.queued:
                state.status, state.step = "stopped", "Cancelled"
        case "prompt-started":
            state.queued = [p for p in state.queued if p != event.prompt_id]
            state.prompt_id, state.status = event.prompt_id, "running"
            state.started_at, state.finished_at = event.ts, None
            state.prompt_cost_usd, state.last_text, state.error, state.tool = 0.0, "", None, None
            state.step = _idle_step(state)
        case "prompt-finished":
            if event.prompt_id == state.prompt_id:
                state.finished_at, state.tool = event.ts, None
                if event.status == "success":
                    state.status, state.step = "finished", "Done"
                elif event.status == "stopped":
                    state.status, state.step = "stopped", "Stopped"
                else:
                    state.status = "failed"
                    state.step = "Interrupted" if event.status == "interrupted" else "Failed"
                    if event.error is not None:
                        state.error = cut(one_line(event.error.message), ERROR_MAX_CHARS)
        case "sandbox-status":
            state.sandbox = event.status
            if state.status == "running" and state.tool is None:
                state.step = _idle_step(state)
        case "agent-thinking" | "agent-text":
            if event.type == "agent-text" and event.prompt_id == state.prompt_id:
                state.last_text = cut(event.text, LAST_TEXT_MAX_CHARS)
            if state.status == "running" and state.tool is None:
                state.step = THINKING
        case "tool-call":
            if state.status == "running":
                state.tool = event.tool
                state.step, state.detail = tool_step(event.tool, event.args)
        case "tool-result":
            if state.status == "running":
                state.tool, state.step, state.detail = None, THINKING, ""
        case "usage":
            if event.prompt_id == state.prompt_id:
                state.prompt_cost_usd += event.cost_usd
            state.cost_usd = max(state.cost_usd, event.total_cost_usd)
        case "git-push":
            state.pushed, state.branch = True, event.branch
        case "pr-opened" | "pr-updated":
            state.pr_url, state.pr_number = event.url, event.number
            state.pr_state = "open" if event.type == "pr-opened" else event.state
        case _:
            pass
    return state.model_dump() != before
