"""Spend limits and the spend ledger on SQLite and the real Postgres: a model response's cost is
counted once however often its usage event is sent; a session's budget is its automation's,
else its repo's, else the global one, over its whole tree; a person's day is their prompts'."""

from __future__ import annotations

import math
import secrets

import pytest

from openinspect.domain.models import Author, User
from openinspect.errors import InvalidInput
from openinspect.store import Store
from openinspect.store.spend import ANY, check_usd
from tests.store.databases import pg_url, store_url  # noqa: F401 - fixtures
from tests.store.records import session_record
from tests.store.test_automations import automation, run
from tests.store.test_changes import running_prompt, usage


async def _session(store: Store, user: User, **fields: object) -> str:
    session = session_record(f"ses_{secrets.token_hex(8)}", user.id).model_copy(update=fields)
    assert await store.sessions.create(session)
    return session.id


async def test_a_response_is_counted_once_in_the_ledger(store: Store) -> None:
    ada = await store.users.create(name="Ada", email="ada@e", role="member")
    session_id = await _session(store, ada)
    prompt = await running_prompt(store, session_id, Author.of(ada))
    await store.events.commit(
        [usage(session_id, prompt.id, 0, 0.25), usage(session_id, prompt.id, 0, 0.25)]
    )
    await store.events.commit([usage(session_id, prompt.id, 1, 0.5)])
    await store.events.commit([usage(session_id, prompt.id, 0, 0.25)])  # re-sent later
    assert await store.spend.spent_by_tree(session_id) == 0.75
    assert await store.spend.spent_today(ada.id) == 0.75
    session = await store.sessions.get(session_id)
    assert session is not None and session.total_cost_usd == 0.75


async def test_the_most_specific_limit_applies_to_the_whole_tree(store: Store) -> None:
    ada = await store.users.create(name="Ada", email="ada@e", role="member")
    repo = await store.repos.create(
        name="acme/web", url="/r", default_branch="main", created_by=ada.id
    )
    root = await _session(store, ada, repo_id=repo.id)
    child = await _session(store, ada, repo_id=repo.id, parent_id=root)
    prompt = await running_prompt(store, child, Author.of(ada))
    await store.events.commit([usage(child, prompt.id, 0, 0.3)])
    # The child's spend is its root's.
    assert await store.spend.spent_by_tree(root) == pytest.approx(0.3)
    assert await store.spend.check(root, [ada.id]) is None  # no limit at all
    await store.spend.set_limit("global", ANY, 0.25, by=ada.id)
    hit = await store.spend.check(child, [ada.id])
    assert hit is not None and (hit.scope, hit.limit_usd) == ("global", 0.25)
    assert hit.spent_usd == pytest.approx(0.3)
    # The repo's limit is over the global one, both ways.
    await store.spend.set_limit("repo", repo.id, 1.0, by=ada.id)
    assert await store.spend.check(root, [ada.id]) is None
    await store.spend.set_limit("repo", repo.id, 0.3, by=ada.id)
    hit = await store.spend.check(root, [ada.id])
    assert hit is not None and (hit.scope, hit.key) == ("repo", repo.id)
    # An automation's session has its automation's limit over its repo's.
    made = automation()
    await store.automations.create(made)
    by_automation = await _session(store, ada, repo_id=repo.id)
    await store.automations.insert_run(run(made.id, "k1", session_id=by_automation))
    p2 = await running_prompt(store, by_automation, Author.of(ada))
    await store.events.commit([usage(by_automation, p2.id, 0, 0.5)])
    hit = await store.spend.check(by_automation, [])
    assert hit is not None and hit.scope == "repo"
    await store.spend.set_limit("automation", made.id, 2.0, by=ada.id)
    assert await store.spend.check(by_automation, []) is None
    # Removing a limit falls back to the next one up.
    await store.spend.set_limit("automation", made.id, None, by=ada.id)
    hit = await store.spend.check(by_automation, [])
    assert hit is not None and hit.scope == "repo"
    assert {(x.scope, x.key, x.usd) for x in await store.spend.limits()} == {
        ("global", ANY, 0.25),
        ("repo", repo.id, 0.3),
    }


async def test_a_persons_day_counts_every_session_of_theirs(store: Store) -> None:
    ada = await store.users.create(name="Ada", email="ada@e", role="member")
    bob = await store.users.create(name="Bob", email="bob@e", role="member")
    first, second = await _session(store, ada), await _session(store, ada)
    for session_id, cost in ((first, 0.2), (second, 0.2)):
        prompt = await running_prompt(store, session_id, Author.of(ada))
        await store.events.commit([usage(session_id, prompt.id, 0, cost)])
    await store.spend.set_limit("user-daily", ANY, 0.4, by=bob.id)
    hit = await store.spend.check(second, [bob.id, ada.id])
    assert hit is not None and (hit.scope, hit.user_id) == ("user-daily", ada.id)
    assert hit.spent_usd == pytest.approx(0.4)
    assert await store.spend.check(second, [bob.id]) is None  # bob's own prompts still run
    await store.spend.set_limit("user-daily", ANY, 0.5, by=bob.id)
    assert await store.spend.check(second, [ada.id]) is None


@pytest.mark.parametrize("bad", [-0.01, math.nan, math.inf, 1e12])
def test_a_limit_is_a_finite_amount_in_range(bad: float) -> None:
    with pytest.raises(InvalidInput):
        check_usd(bad)
    assert check_usd(0.05) == 0.05
