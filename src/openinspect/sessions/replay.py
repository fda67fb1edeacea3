"""What a client gets of a session's stored events when it joins or resumes: bounded by count
and by size, so a log of large events (tool output, boot lines) cannot make one giant frame.

Sizes are read first (``EventStore.sizes``) and only the chosen window is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from openinspect.domain.events import Event
from openinspect.store.events import EventStore

RESUME_MAX_EVENTS = 10_000
"""A client further behind than this starts over from the newest window."""


@dataclass(frozen=True)
class Replay:
    """The events to send, oldest first."""

    events: list[Event]
    has_more: bool
    """Older events exist (page them with ``history``)."""
    reset: bool
    """The client must drop what it has: it joined fresh or was too far behind."""


def _fit(sizes: list[tuple[int, int]], max_events: int, max_chars: int) -> tuple[int, bool]:
    """How many of ``sizes`` (in reading order) fit; at least one. And whether some did not."""
    total = 0
    for count, (_seq, size) in enumerate(sizes[:max_events]):
        total += size
        if total > max_chars and count > 0:
            return count, True
    return min(len(sizes), max_events), len(sizes) > max_events


async def newest_window(
    store: EventStore,
    session_id: str,
    *,
    max_events: int,
    max_chars: int,
    before_seq: int | None = None,
) -> tuple[list[Event], bool]:
    """The newest events (before ``before_seq``) that fit in ``max_events`` and ``max_chars``
    (the newest one always), oldest first, and whether older ones exist."""
    sizes = await store.sizes(session_id, before_seq=before_seq, limit=max_events + 1)
    count, has_more = _fit(sizes, max_events, max_chars)
    if count == 0:
        return [], False
    chosen = sizes[:count]
    return await store.between(session_id, chosen[-1][0], chosen[0][0]), has_more


async def join_replay(
    store: EventStore,
    session_id: str,
    since_seq: int | None,
    *,
    max_events: int,
    max_chars: int,
) -> Replay:
    """Everything after ``since_seq`` if it fits in ``RESUME_MAX_EVENTS`` and ``max_chars``,
    else (and on a fresh join, or from a seq the log never reached) the newest window of
    ``max_events`` and ``max_chars``."""
    if since_seq is not None:
        sizes = await store.sizes(session_id, after_seq=since_seq, limit=RESUME_MAX_EVENTS + 1)
        _count, overflow = _fit(sizes, RESUME_MAX_EVENTS, max_chars)
        # A seq past the log's end is not this log's (a client of a database since restored,
        # say): resuming from it would hide every event up to it, so the client starts over.
        beyond = not sizes and since_seq > await store.last_seq(session_id)
        if not overflow and not beyond:
            events = await store.between(session_id, sizes[0][0], sizes[-1][0]) if sizes else []
            return Replay(events, has_more=False, reset=False)
    events, has_more = await newest_window(
        store, session_id, max_events=max_events, max_chars=max_chars
    )
    return Replay(events, has_more=has_more, reset=True)
