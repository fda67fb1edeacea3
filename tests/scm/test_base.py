"""Repository references and clone URLs."""

from __future__ import annotations

import pytest

from openinspect.scm.base import RepoRef, parse_repo_url

GH = "https://github.com"


@pytest.mark.parametrize(
    ("url", "web_url", "expected"),
    [
        ("https://github.com/acme/widgets", GH, RepoRef("acme", "widgets")),
        ("https://github.com/acme/widgets.git", GH, RepoRef("acme", "widgets")),
        ("https://github.com/acme/widgets.git/", GH, RepoRef("acme", "widgets")),
        ("https://x-access-token:t@github.com/acme/widgets.git", GH, RepoRef("acme", "widgets")),
        ("https://GitHub.com/Acme/Widgets", GH, RepoRef("Acme", "Widgets")),
        ("git@github.com:acme/widgets.git", GH, RepoRef("acme", "widgets")),
        ("ssh://git@github.com/acme/widgets.git", GH, RepoRef("acme", "widgets")),
        (
            "http://127.0.0.1:8901/acme/my.repo.git",
            "http://127.0.0.1:8901",
            RepoRef("acme", "my.repo"),
        ),
        ("https://ghe.corp/acme/widgets", "https://ghe.corp/", RepoRef("acme", "widgets")),
        ("https://ghe.corp/git/acme/widgets", "https://ghe.corp/git", RepoRef("acme", "widgets")),
    ],
)
def test_parse_repo_url_accepts_the_host(url: str, web_url: str, expected: RepoRef) -> None:
    assert parse_repo_url(url, web_url) == expected


@pytest.mark.parametrize(
    ("url", "web_url"),
    [
        ("https://gitlab.com/acme/widgets", GH),
        ("git@gitlab.com:acme/widgets.git", GH),
        ("/srv/git/widgets.git", GH),
        ("file:///srv/git/widgets.git", GH),
        ("widgets", GH),
        ("https://github.com/acme", GH),
        ("https://github.com/acme/widgets/tree/main", GH),
        ("http://127.0.0.1:8902/acme/widgets.git", "http://127.0.0.1:8901"),
        ("https://ghe.corp/acme/widgets", "https://ghe.corp/git"),
        ("https://github.com/-bad/widgets", GH),
    ],
)
def test_parse_repo_url_refuses_everything_else(url: str, web_url: str) -> None:
    assert parse_repo_url(url, web_url) is None


def test_repo_ref_parse_and_slug() -> None:
    ref = RepoRef.parse("acme/widgets.git")
    assert ref == RepoRef("acme", "widgets")
    assert ref.slug == str(ref) == "acme/widgets"
    with pytest.raises(ValueError, match="owner/name"):
        RepoRef.parse("widgets")
    with pytest.raises(ValueError, match="owner/name"):
        RepoRef.parse("acme/../x")
