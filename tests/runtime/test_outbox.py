"""The runtime never sends a frame the control plane would refuse: an oversize answer becomes
``too_large``, anything else oversize is dropped."""

from __future__ import annotations

import json

from openinspect.runtime.bridge import Outbox
from openinspect.runtime.protocol import MAX_FRAME_BYTES


async def test_an_oversize_result_becomes_a_too_large_error() -> None:
    outbox = Outbox()
    # Multibyte: fewer characters than the limit, more bytes.
    assert await outbox.put({"id": "r1", "result": {"content": "é" * (MAX_FRAME_BYTES // 2 + 10)}})
    sent = json.loads(await outbox.peek())
    assert sent["id"] == "r1" and sent["error"]["code"] == "too_large"
    assert len((await outbox.peek()).encode()) < 1000


async def test_an_oversize_event_is_dropped_and_small_ones_pass() -> None:
    outbox = Outbox()
    big = {"type": "log", "source": "setup", "line": "x" * (MAX_FRAME_BYTES + 1)}
    assert await outbox.put(big) is False
    assert await outbox.put({"type": "heartbeat"})
    assert json.loads(await outbox.peek()) == {"type": "heartbeat"}
