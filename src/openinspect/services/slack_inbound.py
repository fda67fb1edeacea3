"""The Slack app's inbound services, both one replica at a time and on only with Slack on.

``slack_inbox``: every ``INBOX_INTERVAL_S``, handle again the inbox rows a crash or a failure
left pending (``SlackInbound.recover``); its first pass runs at start-up.
``slack_socket``: with ``slack.mode == "socket"``, hold the Socket Mode connection (one per
app: Slack spreads envelopes over connections, and one replica keeps it simple).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openinspect.services.registry import ServiceContext

if TYPE_CHECKING:  # slack_sdk loads only where Slack is on
    from openinspect.integrations.slack.inbound import SlackInbound

INBOX_INTERVAL_S = 30.0


class SlackInbox:
    name = "slack_inbox"
    one_replica = True
    interval_s = INBOX_INTERVAL_S

    def __init__(self, inbound: SlackInbound) -> None:
        self._inbound = inbound

    async def run_once(self) -> None:
        await self._inbound.recover()


class SlackSocket:
    name = "slack_socket"
    one_replica = True
    interval_s = 1.0

    def __init__(self, inbound: SlackInbound) -> None:
        self._inbound = inbound

    async def run_once(self) -> None:
        from openinspect.integrations.slack.socket_mode import SocketMode

        await SocketMode(self._inbound).run()


def slack_inbox(context: ServiceContext) -> SlackInbox | None:
    if context.slack_inbound is None:
        return None
    return SlackInbox(context.slack_inbound)


def slack_socket(context: ServiceContext) -> SlackSocket | None:
    if context.slack_inbound is None or context.settings.slack.mode != "socket":
        return None
    return SlackSocket(context.slack_inbound)
