"""Warm pool sizes on each database: set, replaced, removed at 0, listed by repo name with the
repo; a pooled box's row written by the change that announces its claim; a pool-only egress
scope."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from openinspect.domain.events import SandboxStatusChanged
from openinspect.domain.ids import new_id
from openinspect.store import Store
from openinspect.store.changes import Change, NewSandbox, SandboxMove
from openinspect.store.tables import sandboxes
from tests.store.records import session_record


async def test_pool_sizes_are_set_replaced_and_removed(store: Store) -> None:
    user = await store.users.create(name="Ada", email=f"{new_id('u')}@example.com", role="admin")
    made = [
        await store.repos.create(name=name, url=f"/{name}", default_branch="trunk", created_by=None)
        for name in ("zeta", "alpha", "mid")
    ]
    zeta, alpha, mid = made
    assert await store.pools.size(zeta.id) == 0 and await store.pools.targets() == []
    await store.pools.set_size(zeta.id, 2, updated_by=user.id)
    await store.pools.set_size(alpha.id, 1, updated_by=None)
    await store.pools.set_size(zeta.id, 3, updated_by=None)  # replaced, not added
    await store.pools.set_size(mid.id, 0, updated_by=None)  # no pool: no row
    targets = await store.pools.targets()
    assert [(t.repo.name, t.size) for t in targets] == [("alpha", 1), ("zeta", 3)]
    assert targets[1].repo == zeta and targets[1].repo.default_branch == "trunk"
    await store.pools.set_size(zeta.id, 0, updated_by=None)
    assert await store.pools.size(zeta.id) == 0
    assert [t.repo.name for t in await store.pools.targets()] == ["alpha"]


async def test_a_claimed_boxs_row_comes_with_its_event(store: Store) -> None:
    user = await store.users.create(name="Ada", email=f"{new_id('u')}@example.com", role="admin")
    session = session_record(new_id("ses"), user.id)
    await store.sessions.create(session)
    sandbox_id = new_id("sbx")
    assert await store.sandboxes.session_of(sandbox_id) is None  # a pooled box: no row
    token_hash = hashlib.sha256(b"t").hexdigest()
    await store.events.commit(
        [
            Change(
                SandboxStatusChanged(session_id=session.id, status="booting"),
                session={"sandbox_status": "booting"},
                sandbox=SandboxMove(
                    sandbox_id, "booting", new=NewSandbox(session.id, "bwrap", token_hash)
                ),
            )
        ]
    )
    assert await store.sandboxes.session_of(sandbox_id) == session.id
    async with store.engine.connect() as conn:
        row = (await conn.execute(sa.select(sandboxes).where(sandboxes.c.id == sandbox_id))).one()
    assert (row.status, row.provider, row.token_hash) == ("booting", "bwrap", token_hash)
    events = await store.events.after(session.id, 0, 10)
    assert [e.type for e in events][-1] == "sandbox-status"


async def test_a_pooled_boxs_egress_scope_is_its_repos(store: Store) -> None:
    repo = await store.repos.create(name="calc", url="/c", default_branch="main", created_by=None)
    await store.egress.set_repo_entries(repo.id, ["pkgs.example"], updated_by=None)
    scope = await store.egress.repo_scope(repo.id)
    assert (scope.session_id, scope.repo_name, scope.entries) == (None, "calc", ["pkgs.example"])
    gone = await store.egress.repo_scope("rep_missing")
    assert (gone.session_id, gone.repo_name, gone.entries) == (None, None, [])
