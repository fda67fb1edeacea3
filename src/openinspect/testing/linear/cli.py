"""``openinspect testing linear-server``: the fake Linear in the foreground, seeded with a team,
a person and an issue, printing the ``OPENINSPECT_LINEAR__*`` settings that point a server at
it and the names to drive it with (``/_fake/mention`` and friends)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from openinspect.testing.linear.server import FakeLinear

SEED_TEAM = ("ENG", "Engineering")
SEED_USER = ("Alice Example", "alice@example.com")
SEED_ISSUE = "Fix the failing login test"


def serve(
    *,
    port: int,
    host: str = "127.0.0.1",
    client_id: str,
    client_secret: str,
    webhook_url: str | None = None,
    webhook_secret: str,
    echo: Callable[[str], None] = lambda line: print(line, flush=True),
) -> None:
    """Run until Ctrl-C. Raises ValueError for a bad ``--webhook-url`` before binding."""
    if webhook_url is not None and not webhook_url.startswith(("http://", "https://")):
        raise ValueError(f"expected --webhook-url to be an http(s) URL, got {webhook_url!r}")
    if not client_id or not client_secret or not webhook_secret:
        raise ValueError("expected a non-empty --client-id, --client-secret and --webhook-secret")
    fake = FakeLinear(
        client_id=client_id,
        client_secret=client_secret,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        host=host,
        port=port,
    )
    team = fake.add_team(*SEED_TEAM)
    user = fake.add_user(*SEED_USER)
    issue = fake.add_issue(
        team.id, SEED_ISSUE, description="The login test fails on main.", creator=user.id
    )
    fake.bind()
    echo(f"Fake Linear on {fake.base_url} (GraphQL {fake.graphql_url})")
    echo(f"Organization: {fake.org.name} ({fake.org.id}); app user {fake.app_user_id}")
    echo(f"Team: {team.key} {team.name} ({team.id})")
    echo(f"User: {user.name} <{user.email}> ({user.id})")
    echo(f"Issue: {issue.identifier} {issue.title} ({issue.id})")
    echo(f"Webhooks to: {webhook_url or '(none yet: POST /_fake/webhook)'}")
    echo("Point an openinspect server at it with:")
    for key, value in fake.settings_env().items():
        echo(f"{key}={value}")
    echo(
        f"Control endpoints: {fake.base_url}/_fake/mention, /_fake/prompt, /_fake/stop, "
        "/_fake/sessions, /_fake/deliveries (see openinspect.testing.linear.control)"
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how this command ends
        fake.serve_forever()
