"""Repo image records on each database: the opt-in, one pending build per repo, builds that
start once, the newest good image, the ones kept, bad images, interrupted builds, the log's cap
and a build box's egress scope."""

from __future__ import annotations

from openinspect.domain.ids import new_id
from openinspect.store import Store
from openinspect.store.images import LOG_MAX_BYTES, cap_log
from openinspect.store.snapshots import SnapshotData


async def _repo(store: Store) -> str:
    user = await store.users.create(name="Ada", email=f"{new_id('u')}@example.com", role="admin")
    repo = await store.repos.create(
        name=new_id("acme"), url="/r", default_branch="main", created_by=user.id
    )
    return repo.id


def _data(n: int) -> SnapshotData:
    return SnapshotData("bwrap", f"sbx_{n}-00.tar.zst", f"{n:064x}", 100 + n)


async def _built(store: Store, repo_id: str, n: int, *, keep: int = 2) -> tuple[str, list[str]]:
    """A succeeded build of ``main`` at commit ``n``; (its id, the keys dropped)."""
    build, made = await store.images.queue(repo_id, "main", trigger="first")
    assert made
    assert await store.images.start(build.id, sandbox_id=f"sbx_{n}", commit_sha=f"{n:040x}")
    dropped = await store.images.finish(build.id, data=_data(n), error=None, log="ok", keep=keep)
    return build.id, [d.key for d in dropped]


async def test_a_repo_opts_in_and_out(store: Store) -> None:
    repo_id = await _repo(store)
    assert await store.images.get_settings(repo_id) is None
    assert not await store.images.is_enabled(repo_id)
    await store.images.put_settings(repo_id, enabled=True, updated_by=None)
    assert await store.images.is_enabled(repo_id)
    assert repo_id in [r.repo_id for r in await store.images.enabled_repos()]
    off = await store.images.put_settings(repo_id, enabled=False, updated_by=None)
    assert not off.enabled
    assert repo_id not in [r.repo_id for r in await store.images.enabled_repos()]


async def test_a_repo_has_one_pending_build_and_a_build_starts_once(store: Store) -> None:
    repo_id = await _repo(store)
    first, made = await store.images.queue(repo_id, "main", trigger="manual", requested_by=None)
    again, made_again = await store.images.queue(repo_id, "main", trigger="moved")
    assert (made, made_again, again.id, again.trigger) == (True, False, first.id, "manual")
    assert [b.id for b in await store.images.queued()] == [first.id]
    assert await store.images.start(first.id, sandbox_id="sbx_a", commit_sha="a" * 40)
    assert not await store.images.start(first.id, sandbox_id="sbx_b", commit_sha="b" * 40)
    assert await store.images.repo_of_sandbox("sbx_a") == repo_id
    running, _ = await store.images.queue(repo_id, "main", trigger="moved")
    assert (running.id, running.status) == (first.id, "running")
    assert await store.images.finish(first.id, data=None, error="boom", log="x", keep=2) == []
    failed = await store.images.get(repo_id, first.id)
    assert failed is not None
    assert (failed.status, failed.error, failed.log, failed.good) == ("failed", "boom", "x", False)
    assert await store.images.newest_good(repo_id, "main") is None
    last = await store.images.last_started(repo_id, "main")
    assert last is not None and last.id == first.id
    _, made = await store.images.queue(repo_id, "main", trigger="moved")
    assert made  # the finished build is no longer pending


async def test_the_newest_good_image_wins_and_older_ones_past_the_kept_are_dropped(
    store: Store,
) -> None:
    repo_id = await _repo(store)
    one, dropped = await _built(store, repo_id, 1)
    assert dropped == []
    newest = await store.images.newest_good(repo_id, "main")
    assert newest is not None and newest.id == one and newest.data == _data(1)
    assert await store.images.newest_good(repo_id, "other") is None
    two, _ = await _built(store, repo_id, 2)
    three, dropped = await _built(store, repo_id, 3)
    assert dropped == [_data(1).key]
    newest = await store.images.newest_good(repo_id, "main")
    assert newest is not None and newest.id == three
    gone = await store.images.get(repo_id, one)
    assert gone is not None and not gone.good and gone.discarded_at is not None
    assert await store.images.mark_bad(three, "the archive does not match")
    assert not await store.images.mark_bad(three, "again")
    newest = await store.images.newest_good(repo_id, "main")
    assert newest is not None and newest.id == two
    listed = await store.images.of_repo(repo_id, limit=2)
    assert [b.id for b in listed] == [three, two]
    assert listed[0].status == "bad" and listed[0].log is None  # the list carries no log
    older = await store.images.of_repo(repo_id, limit=2, before=two)
    assert [b.id for b in older] == [one]
    assert await store.images.get(await _repo(store), three) is None  # another repo's id


async def test_running_builds_of_a_stopped_server_are_failed(store: Store) -> None:
    repo_id = await _repo(store)
    build, _ = await store.images.queue(repo_id, "main", trigger="first")
    await store.images.start(build.id, sandbox_id="sbx_x", commit_sha="c" * 40)
    interrupted = await store.images.interrupt_running("stopped")
    assert [b.id for b in interrupted] == [build.id]
    found = await store.images.get(repo_id, build.id)
    assert found is not None and (found.status, found.error) == ("failed", "stopped")
    assert await store.images.interrupt_running("stopped") == []
    _, made = await store.images.queue(repo_id, "main", trigger="first")
    assert made


async def test_a_build_box_has_its_repos_egress_entries_and_no_session(store: Store) -> None:
    repo_id = await _repo(store)
    await store.egress.set_repo_entries(repo_id, ["pypi.internal:3141"], updated_by=None)
    build, _ = await store.images.queue(repo_id, "main", trigger="first")
    assert (await store.egress.scope("sbx_build")).entries == []  # not started: nothing
    await store.images.start(build.id, sandbox_id="sbx_build", commit_sha="d" * 40)
    scope = await store.egress.scope("sbx_build")
    assert (scope.session_id, scope.entries) == (None, ["pypi.internal:3141"])
    await store.images.finish(build.id, data=None, error="x", log="", keep=2)
    assert (await store.egress.scope("sbx_build")).entries == []  # a finished build's box: none


def test_the_log_keeps_its_last_bytes() -> None:
    short = "a\nb"
    assert cap_log(short) == short
    long = "\n".join(f"line {i} " + "é" * 50 for i in range(3000))
    capped = cap_log(long)
    assert len(capped.encode()) <= LOG_MAX_BYTES + 40
    assert capped.startswith("[earlier lines cut]\nline ")
    assert capped.endswith(long.splitlines()[-1])


async def test_a_build_failed_as_interrupted_stays_failed_and_its_image_is_dropped(
    store: Store,
) -> None:
    repo_id = await _repo(store)
    build, _ = await store.images.queue(repo_id, "main", trigger="first")
    await store.images.start(build.id, sandbox_id="sbx_late", commit_sha="e" * 40)
    await store.images.interrupt_running("stopped")
    late = await store.images.finish(build.id, data=_data(9), error=None, log="ok", keep=2)
    assert late == [_data(9)]  # the caller deletes what the late build wrote
    found = await store.images.get(repo_id, build.id)
    assert found is not None and (found.status, found.good) == ("failed", False)
