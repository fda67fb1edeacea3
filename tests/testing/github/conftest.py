"""One fake GitHub per module, a fresh repository per test (``acme/r<n>``, forked from the
sample project, with alice pushing, carol reading and the App installed), and one webhook
receiver on a real socket that records every delivery."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import githubkit
import pytest
from githubkit import TokenAuthStrategy

from openinspect.testing.github import Delivery, FakeGitHub
from openinspect.testing.repos import make_sample_repo
from tests.testing.test_github_server import Receiver

FIXED_CALC = 'def add(a, b):\n    """Return the sum of a and b."""\n    return a + b\n'
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_repo(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def fake(hook: Receiver) -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        for login in ("alice", "bob", "carol", "dave"):
            server.add_user(login, orgs=["acme"] if login == "alice" else [])
        server.subscribe_webhooks(hook.url)
        yield server


@dataclass(frozen=True)
class Repo:
    """A test's repository and handy clients for it."""

    fake: FakeGitHub
    full_name: str
    installation_id: int

    @property
    def owner(self) -> str:
        return self.full_name.split("/")[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/")[1]

    def app(self) -> githubkit.GitHub[TokenAuthStrategy]:
        """githubkit as the App's installation."""
        token = self.fake.mint_installation_token(self.installation_id).token
        return self.user_client(token)

    def as_user(self, login: str) -> githubkit.GitHub[TokenAuthStrategy]:
        return self.user_client(self.fake.user_token(login))

    def user_client(self, token: str) -> githubkit.GitHub[TokenAuthStrategy]:
        return githubkit.GitHub(
            TokenAuthStrategy(token), base_url=self.fake.api_url, http_cache=False
        )

    def deliveries(
        self, event: str, action: str | None = None, records: list[Delivery] | None = None
    ) -> list[Delivery]:
        """The deliveries about this repo (of ``event``, ``action``)."""
        return [
            d
            for d in (self.fake.deliveries if records is None else records)
            if d.event == event
            and (action is None or d.action == action)
            and d.payload["repository"]["full_name"] == self.full_name
        ]

    def wait(
        self, event: str, action: str | None = None, count: int = 1, timeout_s: float = 5.0
    ) -> list[Delivery]:
        """Block until ``count`` such deliveries about this repo were made."""

        def enough(records: list[Delivery]) -> bool:
            return len(self.deliveries(event, action, records)) >= count

        self.fake.core.deliverer.wait_for(enough, timeout_s)
        return self.deliveries(event, action)

    def open_fix(self, *, by: str = "alice", draft: bool = False) -> int:
        """A PR by ``by`` that fixes calc.py's line 3 (``-`` line 3, ``+`` line 3)."""
        branch = f"fix-{next(_numbers)}"
        self.fake.commit(self.full_name, branch, {"calc.py": FIXED_CALC}, by=by)
        return self.fake.open_pull(self.full_name, branch, by=by, draft=draft).record.number


@pytest.fixture
def repo(fake: FakeGitHub, sample: Path) -> Repo:
    full_name = f"acme/r{next(_numbers)}"
    fake.create_repo(full_name, source=sample, collaborators={"alice": "push", "carol": "pull"})
    return Repo(fake, full_name, fake.add_installation([full_name]))
