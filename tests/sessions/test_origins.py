"""Origins: proxy paths, canonical GitHub URLs, upstream kinds, host-git credentials, and the
mirrors (one operation at a time per repo, unusable and option-like origins refused)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openinspect.errors import InvalidInput, RepoUnusable
from openinspect.scm.upstream import HttpUpstream, LocalUpstream
from openinspect.sessions.git import branch_in_mirror, ensure_mirror, mirror_path, normalize_origin
from openinspect.sessions.origins import Origins, mirror_lock
from openinspect.testing.repos import git_output, make_sample_repo

WEB = "https://github.com"


def test_github_origins_have_one_spelling_and_their_owner_name_under_the_proxy() -> None:
    origins = Origins(None, WEB)
    for spelling in (
        "https://github.com/Acme/widgets",
        "https://github.com/Acme/widgets.git",
        "git@github.com:Acme/widgets.git",
    ):
        assert origins.canonical(spelling) == "https://github.com/Acme/widgets.git"
        assert origins.slug(spelling) == ("Acme", "widgets")
    assert origins.proxy_path("ses_1", "git@github.com:Acme/widgets.git") == (
        "/git/ses_1/Acme/widgets.git"
    )


def test_other_origins_are_local_and_keep_their_spelling() -> None:
    origins = Origins(None, WEB)
    assert origins.canonical("/srv/repos/my repo.git") == "/srv/repos/my repo.git"
    assert origins.slug("/srv/repos/my repo.git") == ("local", "my-repo")
    assert origins.slug("https://gitlab.com/a/b.git") == ("local", "b")
    assert origins.github_repo("https://gitlab.com/a/b.git") is None


async def test_upstreams_and_credentials_without_an_app() -> None:
    origins = Origins(None, WEB)
    try:
        assert isinstance(origins.upstream("/srv/repos/x.git"), LocalUpstream)
        assert isinstance(origins.upstream("https://github.com/a/b"), HttpUpstream)
        # No App configured: host git talks to GitHub anonymously (public repos only).
        assert await origins.git_env("https://github.com/a/b") == {}
        assert await origins.git_env("/srv/repos/x.git") == {}
    finally:
        await origins.aclose()


async def test_a_mirror_of_an_unusable_origin_is_refused_without_server_paths(
    tmp_path: Path,
) -> None:
    origins = Origins(None, WEB)
    mirrors = tmp_path / "home" / "mirrors"
    plain = tmp_path / "plain"
    plain.mkdir()
    for origin in (str(plain), "http://127.0.0.1:9/x.git"):
        with pytest.raises(RepoUnusable) as info:
            await origins.mirror(mirrors, origin)
        assert str(mirrors) not in info.value.message
        assert info.value.hint
    # Nothing half-made is left behind: only the lock files.
    assert all(p.name.endswith(".lock") for p in mirrors.iterdir())


async def test_option_like_origins_never_reach_git(tmp_path: Path) -> None:
    origins = Origins(None, WEB)
    marker = tmp_path / "pwned"
    for origin in (f"--upload-pack=touch {marker};://x", "-x"):
        with pytest.raises(InvalidInput, match="must not start with '-'"):
            await origins.mirror(tmp_path / "mirrors", origin)
        with pytest.raises(InvalidInput, match="must not start with '-'"):
            normalize_origin(origin)
    assert not marker.exists()


async def test_mirror_operations_on_one_repo_take_turns(tmp_path: Path) -> None:
    """Ten mirrors of one new origin at once: one clone, then refreshes, none failing."""
    (tmp_path / "src").mkdir()
    origin = make_sample_repo(tmp_path / "src")
    origins = Origins(None, WEB)
    mirrors = tmp_path / "mirrors"
    inside = 0
    most = 0

    async def watch() -> None:
        nonlocal inside, most
        async with mirror_lock(mirror_path(mirrors, str(origin))):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    paths = await asyncio.gather(
        *(origins.mirror(mirrors, str(origin)) for _ in range(10)), *(watch() for _ in range(5))
    )
    assert len({p for p in paths if p is not None}) == 1
    assert most == 1


def test_a_home_of_nobody_is_a_path_that_does_not_exist() -> None:
    """``~user`` of no such user: an invalid input (422), not the error Path raises (500)."""
    with pytest.raises(InvalidInput, match="does not exist") as info:
        normalize_origin("~no-such-user-at-all/repo")
    assert info.value.hint


def test_a_name_too_long_for_the_file_system_is_a_path_that_does_not_exist() -> None:
    """A path the kernel refuses to look up (ENAMETOOLONG): 422, not the OSError (500)."""
    with pytest.raises(InvalidInput, match="does not exist"):
        normalize_origin("a" * 5000)


def test_a_missing_home_path_is_named_as_given_not_as_expanded() -> None:
    """The error quotes the input, not the server's home directory ``~`` expands to."""
    with pytest.raises(InvalidInput) as info:
        normalize_origin("~/no-such-repo-here")
    assert info.value.message.endswith("~/no-such-repo-here")
    assert str(Path.home()) not in info.value.message


async def test_a_branch_is_found_in_a_mirror_without_git(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    origin = make_sample_repo(root)
    git_output("branch", "feature/x", "main", cwd=origin)
    mirror = await ensure_mirror(tmp_path / "mirrors", str(origin))  # a clone packs its refs
    assert await branch_in_mirror(mirror, "main")
    assert await branch_in_mirror(mirror, "feature/x")
    assert not await branch_in_mirror(mirror, "feature")
    assert not await branch_in_mirror(mirror, "x")
    git_output("branch", "loose", "main", cwd=mirror)  # a loose ref file
    assert await branch_in_mirror(mirror, "loose")
