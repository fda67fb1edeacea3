"""SCM providers: who a person is on the code host, what they may read, installation tokens for
git, pull requests, reviews and comments, sign-in, and webhook signatures.

GitHub (and GitHub Enterprise Server) is the one provider: ``scm.github.GitHub``, built from
``settings.github``. The shared types and the provider contract are in ``scm.base``; GitHub is
imported from its module (``from openinspect.scm.github import GitHub``) so that importing these
types does not load githubkit.
"""

from openinspect.scm.base import (
    Comment,
    DeviceCode,
    DevicePoll,
    InstallationToken,
    OAuthToken,
    PullRequest,
    RepoRef,
    ReviewComment,
    ScmProvider,
    ScmUser,
    UserEmail,
    parse_repo_url,
)

__all__ = [
    "Comment",
    "DeviceCode",
    "DevicePoll",
    "InstallationToken",
    "OAuthToken",
    "PullRequest",
    "RepoRef",
    "ReviewComment",
    "ScmProvider",
    "ScmUser",
    "UserEmail",
    "parse_repo_url",
]
