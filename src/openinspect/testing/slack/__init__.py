"""A fake Slack for tests and local development: the Web API, the Events API (signed, with
retries), interactivity and Socket Mode, speaking Slack's wire formats so ``slack_sdk`` runs
against it unchanged (see ``server.FakeSlack``)."""

from openinspect.testing.slack.delivery import sign
from openinspect.testing.slack.records import (
    ApiCall,
    Attempt,
    Channel,
    Delivery,
    Ephemeral,
    Message,
    User,
    View,
)
from openinspect.testing.slack.server import FakeSlack

__all__ = [
    "ApiCall",
    "Attempt",
    "Channel",
    "Delivery",
    "Ephemeral",
    "FakeSlack",
    "Message",
    "User",
    "View",
    "sign",
]
