"""A session's diff: its branch on the origin against the merge base with its base, computed from
the control plane's mirror, bounded, and cached per session."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openinspect.domain.events import utcnow
from openinspect.domain.models import Session
from openinspect.errors import GitError
from openinspect.sessions import diff as diff_module
from openinspect.sessions.diff import SessionDiffs
from openinspect.sessions.git import ensure_mirror
from openinspect.testing.repos import git_output, make_sample_repo

BRANCH = "openinspect/abcd1234"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def session_on(origin: Path, last_seq: int = 1) -> Session:
    now = utcnow()
    return Session(
        id="ses_diff",
        title="t",
        repo_url=str(origin),
        repo_id=None,
        base_branch="main",
        branch=BRANCH,
        model="m",
        effort=None,
        status="idle",
        sandbox_status="none",
        creator_id="usr_1",
        parent_id=None,
        total_cost_usd=0.0,
        last_seq=last_seq,
        created_at=now,
        updated_at=now,
    )


def commit_all(work: Path, message: str) -> str:
    git_output("add", "--all", cwd=work)
    git_output("-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", message, cwd=work)
    return git_output("rev-parse", "HEAD", cwd=work).strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return make_sample_repo(root)


@pytest.fixture
def work(tmp_path: Path, origin: Path) -> Path:
    """A clone of the origin on the session branch (as the agent's pushes would make it)."""
    path = tmp_path / "work"
    git_output("clone", "-q", str(origin), str(path), cwd=tmp_path)
    git_output("checkout", "-qb", BRANCH, cwd=path)
    return path


@pytest.fixture
async def mirrors(tmp_path: Path, origin: Path) -> Path:
    mirrors_dir = tmp_path / "mirrors"
    await ensure_mirror(mirrors_dir, str(origin))
    return mirrors_dir


def push(work: Path, ref: str = BRANCH) -> None:
    git_output("push", "-q", "--force", "origin", f"HEAD:refs/heads/{ref}", cwd=work)


async def test_an_unpushed_branch_has_no_files(origin: Path, mirrors: Path) -> None:
    diff = await SessionDiffs(mirrors).get(session_on(origin))
    assert (diff.base, diff.branch, diff.files, diff.truncated) == ("main", BRANCH, (), False)
    assert diff.base_sha is None
    assert diff.head_sha is None


async def test_added_modified_deleted_renamed_and_binary_files(
    origin: Path, mirrors: Path, work: Path
) -> None:
    calc = work / "calc.py"
    calc.write_text(calc.read_text().replace("return a - b", "return a + b"))
    (work / "notes.md").write_text("one\ntwo\n")
    (work / ".gitignore").unlink()
    (work / "test_calc.py").rename(work / "test_adding.py")
    (work / "logo.bin").write_bytes(bytes(range(256)) * 4)
    head = commit_all(work, "changes")
    push(work)
    main = git_output("rev-parse", "main", cwd=origin).strip()

    diff = await SessionDiffs(mirrors).get(session_on(origin))

    assert (diff.base_sha, diff.head_sha, diff.truncated) == (main, head, False)
    files = {f.path: f for f in diff.files}
    assert {p: f.status for p, f in files.items()} == {
        ".gitignore": "deleted",
        "calc.py": "modified",
        "logo.bin": "added",
        "notes.md": "added",
        "test_adding.py": "renamed",
    }
    assert files["test_adding.py"].old_path == "test_calc.py"
    assert all(f.old_path is None for p, f in files.items() if p != "test_adding.py")
    change = files["calc.py"]
    assert (change.additions, change.deletions, change.binary) == (1, 1, False)
    assert change.patch.startswith("@@ ")
    assert "-    return a - b\n+    return a + b\n" in change.patch
    assert "diff --git" not in change.patch and "+++" not in change.patch
    assert (files["notes.md"].additions, files["notes.md"].patch.endswith("+two\n")) == (2, True)
    assert files["logo.bin"].binary and files["logo.bin"].patch == ""
    assert files[".gitignore"].deletions == 1
    assert not any(f.truncated for f in diff.files)


async def test_the_diff_is_against_the_merge_base(
    tmp_path: Path, origin: Path, mirrors: Path, work: Path
) -> None:
    (work / "feature.txt").write_text("feature\n")
    commit_all(work, "feature")
    push(work)
    fork_point = git_output("rev-parse", "main", cwd=origin).strip()
    # main moves on after the session branched: its change is not the session's.
    other = tmp_path / "other"
    git_output("clone", "-q", str(origin), str(other), cwd=tmp_path)
    (other / "upstream.txt").write_text("upstream\n")
    commit_all(other, "upstream work")
    push(other, "main")

    diff = await SessionDiffs(mirrors).get(session_on(origin))

    assert [f.path for f in diff.files] == ["feature.txt"]
    assert diff.base_sha == fork_point


async def test_patches_are_cut_per_file_and_in_total(
    origin: Path, mirrors: Path, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(diff_module, "FILE_PATCH_MAX_BYTES", 2000)
    monkeypatch.setattr(diff_module, "TOTAL_PATCH_MAX_BYTES", 3000)
    monkeypatch.setattr(diff_module, "MAX_FILES", 4)
    (work / "a_big.txt").write_text("".join(f"line {i}\n" for i in range(1000)))
    (work / "b_small.txt").write_text("small\n")
    (work / "c_one_long_line.txt").write_text("x" * 10_000)  # no newline at all
    for name in ("d_mid.txt", "e_mid.txt", "f_past_the_limit.txt"):
        (work / name).write_text("".join(f"{name} {i}\n" for i in range(100)))
    commit_all(work, "big")
    push(work)

    diff = await SessionDiffs(mirrors).get(session_on(origin))

    assert diff.truncated
    assert [f.path for f in diff.files] == [
        "a_big.txt",
        "b_small.txt",
        "c_one_long_line.txt",
        "d_mid.txt",
    ]
    big, small, long_line, mid = diff.files
    assert big.truncated and 1000 < len(big.patch) <= 2000 and big.patch.endswith("\n")
    assert big.additions == 1000  # counts are exact even when the patch is cut
    assert (small.truncated, small.patch) == (False, "@@ -0,0 +1 @@\n+small\n")
    assert long_line.truncated and "xxx" not in long_line.patch
    # d_mid.txt's patch (about 1.4 KB) no longer fits in the 3 KB total.
    assert mid.truncated
    total = sum(len(f.patch.encode()) for f in diff.files)
    assert total <= 3000


async def test_cached_per_session_and_refreshed_when_the_log_moves_or_time_passes(
    origin: Path, mirrors: Path, work: Path
) -> None:
    (work / "one.txt").write_text("1\n")
    commit_all(work, "one")
    push(work)
    clock = Clock()
    diffs = SessionDiffs(mirrors, fetch_interval_s=5, clock=clock)
    session = session_on(origin, last_seq=10)

    concurrent = await asyncio.gather(*(diffs.get(session) for _ in range(5)))
    assert all(d is concurrent[0] for d in concurrent)
    first = concurrent[0]
    assert [f.path for f in first.files] == ["one.txt"]

    # Someone pushes to the branch behind our back (the mirror lacks the commit): not asked
    # again within the interval while the session's log stands still...
    (work / "two.txt").write_text("2\n")
    head = commit_all(work, "two")
    push(work)
    clock.now += 4
    assert await diffs.get(session) is first
    # ...but at once when the log moved (our own pushes always append events)...
    moved = await diffs.get(session_on(origin, last_seq=11))
    assert moved.head_sha == head
    assert [f.path for f in moved.files] == ["one.txt", "two.txt"]
    # ...and after the interval otherwise; an unchanged branch keeps the computed diff.
    clock.now += 6
    assert await diffs.get(session_on(origin, last_seq=11)) is moved


async def test_a_deleted_base_branch_is_a_git_error(
    origin: Path, mirrors: Path, work: Path
) -> None:
    push(work, "trunk")
    session = session_on(origin).model_copy(update={"base_branch": "gone"})
    with pytest.raises(GitError, match="'gone' is not on"):
        await SessionDiffs(mirrors).get(session)


async def test_a_missing_mirror_is_created(tmp_path: Path, origin: Path, work: Path) -> None:
    (work / "one.txt").write_text("1\n")
    commit_all(work, "one")
    push(work)
    diff = await SessionDiffs(tmp_path / "fresh-mirrors").get(session_on(origin))
    assert [f.path for f in diff.files] == ["one.txt"]


async def test_the_origins_credentials_reach_every_git_command_that_talks_to_it(
    tmp_path: Path, origin: Path, work: Path
) -> None:
    """The environment from ``auth_env`` (``Origins.git_env``: an ``http.extraHeader`` for
    GitHub) is used for the mirror, ls-remote and fetch. Here it rewrites an unreachable URL to
    the real origin, so the diff only works if every such command got it."""
    (work / "one.txt").write_text("1\n")
    commit_all(work, "one")
    push(work)
    url = "https://git.invalid/owner/repo.git"
    asked: list[str] = []

    async def auth_env(for_origin: str) -> dict[str, str]:
        asked.append(for_origin)
        return {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"url.{origin}.insteadOf",
            "GIT_CONFIG_VALUE_0": url,
        }

    session = session_on(origin).model_copy(update={"repo_url": url})
    diff = await SessionDiffs(tmp_path / "mirrors", auth_env=auth_env).get(session)
    assert [f.path for f in diff.files] == ["one.txt"]
    assert asked == [url]
