"""In-process bus: the default for one server process."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from openinspect.bus.base import SUBSCRIBER_QUEUE_MAX, SubscriberOverflow

_OVERFLOW = object()


class MemoryBus:
    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[asyncio.Queue[object]]] = defaultdict(set)

    async def publish(self, channel: str, message: str) -> None:
        for queue in list(self._subscribers.get(channel, ())):
            if queue.qsize() >= SUBSCRIBER_QUEUE_MAX:
                # Drop the backlog and leave one marker, so the reader learns it must resync.
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(_OVERFLOW)
                self._subscribers[channel].discard(queue)
            else:
                queue.put_nowait(message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        queue: asyncio.Queue[object] = asyncio.Queue()
        self._subscribers[channel].add(queue)

        async def messages() -> AsyncIterator[str]:
            while True:
                item = await queue.get()
                if item is _OVERFLOW:
                    raise SubscriberOverflow(channel)
                assert isinstance(item, str)
                yield item

        try:
            yield messages()
        finally:
            subscribers = self._subscribers.get(channel)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[channel]

    async def close(self) -> None:
        self._subscribers.clear()
