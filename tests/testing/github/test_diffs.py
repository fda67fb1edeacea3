"""A PR's diff as GitHub computes it, from the fake's bare repository: the three-dot diff,
statuses and renames, GitHub's ``patch``, positions, and where a comment may anchor."""

from __future__ import annotations

import httpx

from openinspect.testing.github import diffs
from openinspect.testing.github.gitops import git
from tests.testing.github.conftest import FIXED_CALC, Repo

PATCH = """@@ -1,4 +1,4 @@
 one
-two
+TWO
 three
 four
@@ -10,2 +10,3 @@ def f():
 ten
+ten and a half
 eleven"""


def test_positions_lines_and_hunks_of_a_patch() -> None:
    entry = diffs.FileDiff("f.txt", "modified", "0" * 40, 2, 1, PATCH)
    kinds = [(e.position, e.kind, e.old, e.new, e.hunk) for e in entry.lines]
    assert kinds == [
        (1, " ", 1, 1, 0),
        (2, "-", 2, None, 0),
        (3, "+", None, 2, 0),
        (4, " ", 3, 3, 0),
        (5, " ", 4, 4, 0),
        (6, "@", None, None, 1),  # a later header counts as a position
        (7, " ", 10, 10, 1),
        (8, "+", None, 11, 1),
        (9, " ", 11, 12, 1),
    ]
    assert entry.find(2, "RIGHT") == entry.at(3)
    assert entry.find(2, "LEFT") == entry.at(2)
    assert entry.find(11, "LEFT") == entry.at(9)  # context: both sides
    assert entry.find(5, "RIGHT") is None  # between the hunks
    assert entry.find(13, "RIGHT") is None
    assert entry.hunk_up_to(entry.at(3)) == "@@ -1,4 +1,4 @@\n one\n-two\n+TWO"  # type: ignore[arg-type]
    assert entry.hunk_up_to(entry.at(8)).startswith("@@ -10,2 +10,3 @@")  # type: ignore[arg-type]


def test_files_statuses_renames_binaries_and_the_merge_base(repo: Repo) -> None:
    fake, name = repo.fake, repo.full_name
    path = fake.bare_path(name)
    base = fake.branch_sha(name, "main")
    assert base is not None
    fake.commit(name, "feature", {"calc.py": FIXED_CALC, "new.txt": "a\nb\n"}, by="alice")
    # A rename and a removal, made with plumbing on the feature branch.
    work = path.parent / "work-diffs"
    git("worktree", "add", "--quiet", str(work), "feature", cwd=path)
    git("mv", "test_calc.py", "tests_calc.py", cwd=work)
    git("rm", "--quiet", ".gitignore", cwd=work)
    (work / "blob.bin").write_bytes(b"\x00\x01\x02")
    git("add", "blob.bin", cwd=work)
    git("-c", "user.name=A", "-c", "user.email=a@x", "commit", "--quiet", "-m", "more", cwd=work)
    git("worktree", "remove", "--force", str(work), cwd=path)
    # main moves on after the branch point: its change is not part of the PR's diff.
    fake.commit(name, "main", {"later.txt": "later\n"}, by="alice")
    head = fake.branch_sha(name, "feature")
    main = fake.branch_sha(name, "main")
    assert head is not None and main is not None and main != base
    files = {f.filename: f for f in diffs.pull_files(path, main, head)}
    assert set(files) == {"calc.py", "new.txt", "tests_calc.py", ".gitignore", "blob.bin"}
    calc = files["calc.py"]
    assert (calc.status, calc.additions, calc.deletions, calc.changes) == ("modified", 1, 1, 2)
    assert calc.patch is not None and calc.patch.startswith("@@ -1,3 +1,3 @@")
    assert (files["new.txt"].status, files["new.txt"].additions) == ("added", 2)
    renamed = files["tests_calc.py"]
    assert (renamed.status, renamed.previous_filename) == ("renamed", "test_calc.py")
    assert files[".gitignore"].status == "removed"
    assert files["blob.bin"].patch is None  # binary: GitHub leaves the patch out
    blob = git("rev-parse", f"{head}:new.txt", cwd=path).strip()
    assert files["new.txt"].sha == blob
    assert "later.txt" in diffs.unified(path, base, main)
    assert "later.txt" not in diffs.unified(path, main, head)


async def test_the_files_endpoint_pages_and_the_diff_media_type(repo: Repo) -> None:
    number = repo.open_fix()
    branch = repo.fake.pull(repo.full_name, number).head
    repo.fake.commit(repo.full_name, branch, {"b.txt": "b\n", "a.txt": "a\n"}, by="alice")
    gh = repo.app()
    first = await gh.rest.pulls.async_list_files(repo.owner, repo.name, number, per_page=2)
    assert [f.filename for f in first.parsed_data] == ["a.txt", "b.txt"]
    assert 'rel="next"' in first.headers["link"]
    pages = gh.rest.paginate(
        gh.rest.pulls.async_list_files,
        owner=repo.owner,
        repo=repo.name,
        pull_number=number,
        per_page=1,
    )
    every = [f async for f in pages]
    assert [f.filename for f in every] == ["a.txt", "b.txt", "calc.py"]
    calc = every[2]
    assert (calc.status, calc.additions, calc.deletions, calc.changes) == ("modified", 1, 1, 2)
    assert calc.patch is not None and "+    return a + b" in calc.patch
    head = repo.fake.pull(repo.full_name, number).head_sha
    assert calc.blob_url.endswith(f"/blob/{head}/calc.py")
    token = repo.fake.mint_installation_token(repo.installation_id).token
    response = httpx.get(
        f"{repo.fake.api_url}/repos/{repo.full_name}/pulls/{number}",
        headers={"Authorization": f"token {token}", "Accept": "application/vnd.github.diff"},
    )
    assert response.status_code == 200
    assert response.text.startswith("diff --git a/a.txt b/a.txt")
    assert "-    return a - b\n+    return a + b" in response.text
