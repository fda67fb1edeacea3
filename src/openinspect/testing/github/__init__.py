"""A fake GitHub for tests and local development: REST API, OAuth, webhooks and real
smart-HTTP git, speaking GitHub's wire formats (see ``server.FakeGitHub``)."""

from openinspect.testing.github.core import RecordedRequest
from openinspect.testing.github.people import Acted
from openinspect.testing.github.records import (
    CommentRec,
    PullRec,
    ReactionRec,
    RepoRec,
    ReviewCommentRec,
    ReviewRec,
    UserRec,
)
from openinspect.testing.github.server import FakeGitHub
from openinspect.testing.github.state import ApiError
from openinspect.testing.github.webhooks import Delivery

__all__ = [
    "Acted",
    "ApiError",
    "CommentRec",
    "Delivery",
    "FakeGitHub",
    "PullRec",
    "ReactionRec",
    "RecordedRequest",
    "RepoRec",
    "ReviewCommentRec",
    "ReviewRec",
    "UserRec",
]
