"""The store tests' shared fixture: ``store``, a store opened on each supported database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from openinspect.store import Store
from tests.store.databases import pg_url, store_url  # noqa: F401 - fixtures


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:  # noqa: F811 - the fixture
    opened = await Store.open(store_url)
    try:
        yield opened
    finally:
        await opened.close()
