"""Origins: proxy paths, canonical GitHub URLs, upstream kinds, host-git credentials."""

from __future__ import annotations

from openinspect.scm.upstream import HttpUpstream, LocalUpstream
from openinspect.sessions.origins import Origins

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
