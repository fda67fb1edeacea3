"""Writing straight into a server's database, for browser tests and benchmarks: extra users, and
long session histories that would take many minutes to produce through real prompts.

``seed_history`` must run while no server owns the database (a running server keeps each live
session's last seq in memory): stop the server, seed, start it again.
"""

from __future__ import annotations

from datetime import timedelta

from openinspect.domain.events import (
    AgentText,
    Event,
    PromptFinished,
    PromptQueued,
    PromptStarted,
    ToolCall,
    ToolResult,
    Usage,
    utcnow,
)
from openinspect.domain.models import Author, Role, User
from openinspect.store import Store

_BATCH = 1000
_COMMANDS = (
    "python3 -m unittest -q",
    "git status --short",
    "grep -rn 'def add' .",
    "ls -la",
)


async def add_user(database_url: str, name: str, *, role: Role = "member") -> tuple[User, str]:
    """A new user with an API token; returns both."""
    store = await Store.open(database_url, run_migrations=False)
    try:
        slug = name.lower().replace(" ", ".")
        user = await store.users.create(name=name, email=f"{slug}@example.com", role=role)
        return user, await store.users.create_token(user.id, f"{name} (seeded)")
    finally:
        await store.close()


_TOOL_CALLS = 3
_PROMPT_EVENTS = 5 + 3 * _TOOL_CALLS
"""A seeded prompt: queued, started, (text, tool call, result) x 3, text, usage, finished."""


def synthetic_history(session_id: str, author: Author, first_seq: int, count: int) -> list[Event]:
    """``count`` durable events with seqs from ``first_seq``: finished prompts, each with tool
    calls and text between them, a usage report and ``prompt-finished``. From 5 events on, the
    history ends with a ``prompt-finished`` (the last prompt is shorter, or has more text, to
    fit). Deterministic but for the timestamps."""
    out: list[Event] = []
    n = 0
    total_cost = 0.0
    while len(out) < count:
        n += 1
        left = count - len(out)
        if left >= _PROMPT_EVENTS + 5 or left < 5:
            calls, texts = _TOOL_CALLS, 0
        else:
            calls, texts = divmod(left - 5, 3)
        total_cost += 0.0042
        out += _prompt(session_id, author, n, calls, texts, total_cost)
    start = utcnow() - timedelta(seconds=count)
    return [
        e.model_copy(update={"seq": first_seq + i, "ts": start + timedelta(seconds=i)})
        for i, e in enumerate(out[:count])
    ]


def _prompt(
    session_id: str, author: Author, n: int, calls: int, texts: int, total_cost: float
) -> list[Event]:
    """One finished prompt: ``5 + 3 * calls + texts`` events."""
    pid = f"prm_seed{n:06d}"
    model = "openai-compatible:scripted"
    events: list[Event] = [
        PromptQueued(
            session_id=session_id,
            prompt_id=pid,
            author=author,
            content=f"Step {n}: make the next test pass and explain what changed.",
            model=model,
            effort=None,
            position=0,
        ),
        PromptStarted(session_id=session_id, prompt_id=pid, model=model, effort=None),
    ]
    for call in range(calls):
        call_id = f"call_{n}_{call}"
        command = _COMMANDS[(n + call) % len(_COMMANDS)]
        events += [
            AgentText(
                session_id=session_id,
                prompt_id=pid,
                part_id=f"part_{n}_{call}",
                text=f"Step {n}.{call}: running `{command}` to see where we are.\n\n"
                "```python\ndef add(a, b):\n    return a + b\n```",
            ),
            ToolCall(
                session_id=session_id,
                prompt_id=pid,
                call_id=call_id,
                tool="bash",
                args={"command": command},
            ),
            ToolResult(
                session_id=session_id,
                prompt_id=pid,
                call_id=call_id,
                tool="bash",
                output="".join(f"line {i} of step {n}.{call}\n" for i in range(1 + n % 20)),
                exit_code=0,
                duration_ms=12 + n % 50,
            ),
        ]
    events += [
        AgentText(
            session_id=session_id,
            prompt_id=pid,
            part_id=f"part_{n}_note_{i}",
            text=f"A note on step {n}.",
        )
        for i in range(texts)
    ]
    events += [
        AgentText(
            session_id=session_id,
            prompt_id=pid,
            part_id=f"part_{n}_done",
            text=f"Done with step {n}: the tests pass.",
        ),
        Usage(
            session_id=session_id,
            prompt_id=pid,
            model=model,
            input_tokens=1200 + n,
            output_tokens=300,
            cost_usd=0.0042,
            total_cost_usd=round(total_cost, 4),
        ),
        PromptFinished(session_id=session_id, prompt_id=pid, status="success", duration_ms=2500),
    ]
    return events


async def seed_history(database_url: str, session_id: str, count: int) -> int:
    """Append ``count`` synthetic events (``synthetic_history``) to a session's log, as its
    creator; returns the new last seq. No server may be running on the database."""
    store = await Store.open(database_url, run_migrations=False)
    try:
        session = await store.sessions.get(session_id)
        if session is None:
            raise ValueError(f"No session {session_id!r} to seed")
        creator = await store.users.get(session.creator_id)
        assert creator is not None
        last = await store.events.last_seq(session_id)
        history = synthetic_history(session_id, Author.of(creator), last + 1, count)
        for i in range(0, len(history), _BATCH):
            await store.events.append_many(session_id, history[i : i + _BATCH])
        return last + count
    finally:
        await store.close()
