"""A feed consumer in its own process, for the kill -9 test: ``python -m
tests.sessions.feed_worker URL NAME``. It records every event it handles in the ``effects`` table
on the claim's connection, then lingers before the claim commits (the window a kill lands in),
and exits once it has caught up with the feed."""

from __future__ import annotations

import asyncio
import sys

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from openinspect.bus.memory import MemoryBus
from openinspect.sessions.feed import FeedConsumer
from openinspect.store import Store
from openinspect.store.feed import FeedBatch

BATCH_SIZE = 10
LINGER_S = 0.05


async def record(batch: FeedBatch, conn: AsyncConnection) -> None:
    await conn.execute(
        sa.text("INSERT INTO effects (consumer, pos) VALUES (:c, :p)"),
        [{"c": "worker", "p": entry.pos} for entry in batch.entries],
    )
    await asyncio.sleep(LINGER_S)


async def main(url: str, name: str) -> None:
    store = await Store.open(url, run_migrations=False)
    try:
        consumer = FeedConsumer(
            store, MemoryBus(), name, record, start="beginning", batch_size=BATCH_SIZE
        )
        while await consumer.step():
            pass
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
