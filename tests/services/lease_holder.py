"""A server stand-in for ``test_base``: runs one one-replica service that appends a line to a
file on every pass, until the process is killed.

    python -m tests.services.lease_holder DATABASE_URL PATH LEASE_TTL_S
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from openinspect.services.base import ServiceRunner
from openinspect.store import Store

NAME = "counting"
INTERVAL_S = 0.05


class Touch:
    name = NAME
    one_replica = True
    interval_s = INTERVAL_S

    def __init__(self, path: Path) -> None:
        self.path = path

    async def run_once(self) -> None:
        with self.path.open("a") as out:
            out.write("run\n")


async def main(url: str, path: str, ttl_s: str) -> None:
    store = await Store.open(url)
    runner = ServiceRunner(
        [Touch(Path(path))], store.leases, lease_ttl_s=float(ttl_s), backoff_max_s=1
    )
    runner.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
