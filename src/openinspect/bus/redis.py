"""Redis pub/sub bus, for several server replicas sharing sessions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from openinspect.bus.base import SUBSCRIBER_QUEUE_MAX, SubscriberOverflow
from openinspect.errors import ConfigError

_CHANNEL_PREFIX = "openinspect:"


class RedisBus:
    def __init__(self, url: str) -> None:
        try:
            from redis.asyncio import Redis
        except ModuleNotFoundError as exc:
            raise ConfigError(
                "The Redis bus needs the redis package", hint="pip install 'openinspect[redis]'"
            ) from exc
        self._redis: Any = Redis.from_url(url, decode_responses=True)

    async def publish(self, channel: str, message: str) -> None:
        await self._redis.publish(_CHANNEL_PREFIX + channel, message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(_CHANNEL_PREFIX + channel)
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        async def pump() -> None:
            async for raw in pubsub.listen():
                if raw.get("type") != "message":
                    continue
                if queue.qsize() >= SUBSCRIBER_QUEUE_MAX:
                    queue.put_nowait(None)
                    return
                queue.put_nowait(raw["data"])

        task = asyncio.create_task(pump())

        async def messages() -> AsyncIterator[str]:
            while True:
                item = await queue.get()
                if item is None:
                    raise SubscriberOverflow(channel)
                yield item

        try:
            yield messages()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await pubsub.unsubscribe()
            await pubsub.aclose()

    async def close(self) -> None:
        await self._redis.aclose()
