"""The event union round-trips through its one serializer, discriminated by ``type``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from openinspect.domain.events import (
    AgentTextDelta,
    ToolResult,
    dump_event,
    is_ephemeral,
    load_event,
)


def test_round_trip_and_discrimination() -> None:
    event = ToolResult(
        session_id="ses_1",
        seq=7,
        prompt_id="prm_1",
        call_id="c1",
        tool="bash",
        output="ok\n",
        exit_code=0,
        duration_ms=3,
    )
    data = dump_event(event)
    assert data["type"] == "tool-result" and data["v"] == 1
    assert load_event(data) == event
    assert isinstance(load_event(data), ToolResult)


def test_ephemeral_events() -> None:
    assert is_ephemeral(AgentTextDelta(session_id="s", part_id="p", delta="x"))
    assert not is_ephemeral(ToolResult(session_id="s", call_id="c", tool="bash", output=""))


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValidationError):
        load_event({"type": "no-such-event", "session_id": "s"})
