"""A fake GitHub for tests and local development: REST API, OAuth, webhooks and real
smart-HTTP git, speaking GitHub's wire formats (see ``server.FakeGitHub``)."""

from openinspect.testing.github.core import RecordedRequest
from openinspect.testing.github.records import PullRec, RepoRec, UserRec
from openinspect.testing.github.server import FakeGitHub
from openinspect.testing.github.webhooks import Delivery

__all__ = ["Delivery", "FakeGitHub", "PullRec", "RecordedRequest", "RepoRec", "UserRec"]
