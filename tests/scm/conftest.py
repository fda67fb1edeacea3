"""A fake GitHub with one private repo (the sample project), its App installed there, two users
(alice may push, bob is a stranger), and our GitHub client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from openinspect.scm.base import RepoRef
from openinspect.scm.github import GitHub
from openinspect.testing.github import FakeGitHub

REPO = "acme/widgets"
REF = RepoRef("acme", "widgets")


@pytest.fixture
def fake(origin: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.add_user("alice", name="Alice Liddell", emails=["alice@acme.test"], orgs=["acme"])
        server.add_user("bob", emails=[("bob@else.test", False, True)])
        server.create_repo(REPO, source=origin, collaborators={"alice": "push"})
        server.add_installation([REPO])
        yield server


@pytest.fixture
async def github(fake: FakeGitHub) -> AsyncIterator[GitHub]:
    async with GitHub(fake.settings(), retry_server_errors=False) as client:
        yield client
