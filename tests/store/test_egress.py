"""The egress records on each database: a box's scope in one query, the request log paged
newest first, a repo's entries replaced whole."""

from __future__ import annotations

import hashlib

from openinspect.domain.ids import new_id
from openinspect.store import Store
from tests.store.records import session_record


async def _box(store: Store, *, registered: bool) -> tuple[str, str, str | None]:
    """(sandbox id, session id, repo id) of a new box."""
    user = await store.users.create(name="Ada", email=f"{new_id('u')}@example.com", role="admin")
    repo_id = None
    session = session_record(new_id("ses"), user.id)
    if registered:
        repo = await store.repos.create(
            name=new_id("acme"), url="/r", default_branch="main", created_by=user.id
        )
        repo_id = repo.id
        session = session.model_copy(update={"repo_id": repo.id})
    await store.sessions.create(session)
    sandbox_id = new_id("sbx")
    await store.sandboxes.create(
        sandbox_id=sandbox_id,
        session_id=session.id,
        provider="test",
        token_hash=hashlib.sha256(b"t").hexdigest(),
    )
    return sandbox_id, session.id, repo_id


async def test_a_boxs_scope_is_its_session_repo_and_entries(store: Store) -> None:
    sandbox_id, session_id, repo_id = await _box(store, registered=True)
    assert repo_id is not None
    scope = await store.egress.scope(sandbox_id)
    assert (scope.session_id, scope.entries) == (session_id, [])
    await store.egress.set_repo_entries(repo_id, ["b.example", "a.example:8443"], updated_by=None)
    scope = await store.egress.scope(sandbox_id)
    assert scope.entries == ["a.example:8443", "b.example"] and scope.repo_name
    await store.egress.set_repo_entries(repo_id, ["c.example"], updated_by=None)
    assert (await store.egress.scope(sandbox_id)).entries == ["c.example"]

    unregistered, other_session, _ = await _box(store, registered=False)
    assert await store.egress.scope(unregistered) == type(scope)(other_session, None, [])
    assert (await store.egress.scope("sbx_unknown")).session_id is None


async def test_the_log_is_paged_newest_first_with_its_outcomes(store: Store) -> None:
    sandbox_id, session_id, _ = await _box(store, registered=False)
    ids = []
    for n in range(5):
        ids.append(
            await store.egress.record(
                session_id=session_id,
                sandbox_id=sandbox_id,
                method="CONNECT",
                host=f"h{n}.example",
                port=443,
                allowed=n % 2 == 0,
                code="allowed" if n % 2 == 0 else "host_not_allowed",
                status=200 if n % 2 == 0 else 403,
                message="" if n % 2 == 0 else "refused",
            )
        )
    await store.egress.finish(ids[0], bytes_up=10, bytes_down=20, duration_ms=5)
    await store.egress.finish(
        ids[2], bytes_up=0, bytes_down=0, duration_ms=7, outcome=(502, "unreachable", "no")
    )
    first = await store.egress.of_session(session_id, limit=3)
    assert [r.host for r in first] == ["h4.example", "h3.example", "h2.example"]
    rest = await store.egress.of_session(session_id, limit=3, before=first[-1].id)
    assert [r.host for r in rest] == ["h1.example", "h0.example"]
    assert (rest[1].bytes_up, rest[1].bytes_down, rest[1].duration_ms) == (10, 20, 5)
    assert (first[2].status, first[2].code, first[2].allowed) == (502, "unreachable", True)
    assert await store.egress.refused_before(sandbox_id, "h1.example")
    assert not await store.egress.refused_before(sandbox_id, "h0.example")
