"""A fake Linear for tests and local development: the GraphQL API the product uses (checked
against a subset of Linear's published schema), OAuth 2 with the app actor, and signed
``AgentSessionEvent`` webhooks with retries (see ``server.FakeLinear``)."""

from openinspect.testing.linear.delivery import sign
from openinspect.testing.linear.records import (
    Activity,
    AgentSession,
    ApiCall,
    Attempt,
    Delivery,
    Issue,
    Label,
    Organization,
    Project,
    Team,
    Token,
    User,
    WorkflowState,
)
from openinspect.testing.linear.server import FakeLinear

__all__ = [
    "Activity",
    "AgentSession",
    "ApiCall",
    "Attempt",
    "Delivery",
    "FakeLinear",
    "Issue",
    "Label",
    "Organization",
    "Project",
    "Team",
    "Token",
    "User",
    "WorkflowState",
    "sign",
]
