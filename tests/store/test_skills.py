"""Managed skills on SQLite and the real Postgres: global or a repo's, a repo's hiding a global
one of the same name, replaced in place, refused when bad, deleted with their repo."""

from __future__ import annotations

import pytest

from openinspect.errors import InvalidInput
from openinspect.store import Store
from openinspect.store.skills import BODY_MAX_CHARS
from tests.store.databases import pg_url, store_url  # noqa: F401 - fixtures


async def test_a_repos_skill_hides_the_global_one(store: Store) -> None:
    ada = await store.users.create(name="Ada", email="ada@e", role="admin")
    repo = await store.repos.create(
        name="acme/web", url="/r", default_branch="main", created_by=ada.id
    )
    await store.skills.put(None, "release", "How we release", "Global steps", by=ada.id)
    await store.skills.put(None, "style", "Our style", "Be terse", by=ada.id)
    await store.skills.put(repo.id, "release", "How web releases", "Web steps", by=ada.id)
    assert [(s.name, s.body) for s in await store.skills.listed(repo.id)] == [
        ("release", "Web steps"),
        ("style", "Be terse"),
    ]
    assert [s.body for s in await store.skills.listed(None)] == ["Global steps", "Be terse"]
    found = await store.skills.get(repo.id, "style")
    assert found is not None and found.repo_id is None
    # Replaced in place, not added.
    await store.skills.put(None, "style", "Our style", "Be terser", by=ada.id)
    assert [s.body for s in await store.skills.listed(None)] == ["Global steps", "Be terser"]
    assert await store.skills.delete(repo.id, "release")
    assert not await store.skills.delete(repo.id, "release")
    found = await store.skills.get(repo.id, "release")
    assert found is not None and found.body == "Global steps"


@pytest.mark.parametrize(
    ("name", "description", "body"),
    [
        ("Bad Name", "d", "b"),
        ("../x", "d", "b"),
        ("ok", "", "b"),
        ("ok", "d", " "),
        ("ok", "d", "x" * (BODY_MAX_CHARS + 1)),
        ("ok", "d", "nul\x00"),
    ],
)
async def test_bad_skills_are_refused(store: Store, name: str, description: str, body: str) -> None:
    with pytest.raises(InvalidInput):
        await store.skills.put(None, name, description, body, by=None)
    assert await store.skills.listed(None) == []
