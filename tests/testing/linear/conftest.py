"""One fake Linear and one webhook receiver per test module (tests make their own teams,
issues and sessions, so they do not see each other's), reset between tests where it matters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openinspect.testing.linear import FakeLinear
from tests.testing.linear.receiver import Receiver

SECRET = "whsec-test"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver(SECRET) as r:
        yield r


@pytest.fixture(scope="module")
def module_linear(receiver: Receiver) -> Iterator[FakeLinear]:
    with FakeLinear(webhook_url=receiver.url, webhook_secret=SECRET, retry_delay_s=0.05) as fake:
        yield fake


@pytest.fixture
def linear(module_linear: FakeLinear, receiver: Receiver) -> Iterator[FakeLinear]:
    module_linear.wait_for_deliveries()
    receiver.reset()
    module_linear.webhook(receiver.url, SECRET)
    module_linear.policy.attempts, module_linear.policy.retry_delay_s = 3, 0.05
    module_linear.policy.timeout_s = 5.0
    yield module_linear
    module_linear.wait_for_deliveries()
