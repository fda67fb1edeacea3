"""``wait_for`` as Python 3.12 has it, for 3.11.

On 3.11, :func:`asyncio.wait_for` can swallow a cancellation that lands while the awaited thing
finishes (CPython gh-86296, fixed in 3.12 by building ``wait_for`` on :func:`asyncio.timeout`):
the caller gets the result instead of ``CancelledError`` and a task told to stop runs on. Use
this one everywhere in ``src`` (``runtime``, which runs in the box on the standard library alone,
uses :func:`asyncio.timeout` itself).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(aw: Awaitable[T], timeout_s: float | None) -> T:
    """``await aw``, raising ``TimeoutError`` after ``timeout_s`` seconds (None: no limit);
    a cancellation of the caller always cancels."""
    async with asyncio.timeout(timeout_s):
        return await aw
