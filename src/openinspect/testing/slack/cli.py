"""``openinspect testing slack-server``: the fake Slack in the foreground, printing the
``OPENINSPECT_SLACK__*`` settings that point a server at it."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence

from openinspect.testing.slack.server import FakeSlack

USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{1,20}$")
CHANNEL_ID_RE = re.compile(r"^[CG][A-Z0-9]{1,20}$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")


def parse_user(spec: str) -> tuple[str, str, str | None]:
    """``U1:alice`` or ``U1:alice:alice@example.com``."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not USER_ID_RE.match(parts[0]) or not NAME_RE.match(parts[1]):
        raise ValueError(f"expected --user ID:name[:email] (e.g. U1:alice:a@x.org), got {spec!r}")
    email = parts[2] if len(parts) == 3 and parts[2] else None
    if email is not None and ("@" not in email or len(email) > 254):
        raise ValueError(f"expected an email address in --user {spec!r}")
    return parts[0], parts[1], email


def parse_channel(spec: str) -> tuple[str, str]:
    """``C1:eng``."""
    channel_id, sep, name = spec.partition(":")
    if not sep or not CHANNEL_ID_RE.match(channel_id) or not NAME_RE.match(name):
        raise ValueError(f"expected --channel ID:name (e.g. C1:eng), got {spec!r}")
    return channel_id, name


def serve(
    *,
    port: int,
    host: str = "127.0.0.1",
    signing_secret: str,
    bot_token: str,
    app_token: str,
    events_url: str | None = None,
    interactions_url: str | None = None,
    users: Sequence[str] = (),
    channels: Sequence[str] = (),
    echo: Callable[[str], None] = lambda line: print(line, flush=True),
) -> None:
    """Run until Ctrl-C. Raises ValueError for a bad ``--user``/``--channel`` before binding."""
    user_specs = [parse_user(s) for s in users]
    channel_specs = [parse_channel(s) for s in channels]
    fake = FakeSlack(
        signing_secret=signing_secret,
        bot_token=bot_token,
        app_token=app_token,
        events_url=events_url,
        interactions_url=interactions_url,
        host=host,
        port=port,
    )
    for user_id, name, email in user_specs:
        fake.add_user(user_id, name=name, email=email)
    for channel_id, name in channel_specs:
        fake.add_channel(channel_id, name=name)
    fake.bind()
    echo(f"Fake Slack on {fake.base_url} (Web API {fake.api_url})")
    echo("Point an openinspect server at it with:")
    for key, value in fake.settings_env().items():
        echo(f"{key}={value}")
    echo(
        f"Control endpoints: {fake.base_url}/_fake/messages, /_fake/home, /_fake/click "
        "(see openinspect.testing.slack.control)"
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how this command ends
        fake.serve_forever()
