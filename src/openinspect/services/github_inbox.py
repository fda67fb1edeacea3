"""``github_inbox``: hand the GitHub bot's stored deliveries that a crash or a failure left
pending to their handlers again (``integrations.github.inbox``), one server at a time, every
``RECOVER_INTERVAL_S``; its first pass runs at start-up. On whenever the bot is."""

from __future__ import annotations

from openinspect.integrations.github.inbox import RECOVER_INTERVAL_S, GithubInbox
from openinspect.services.registry import ServiceContext


class GithubInboxRecovery:
    name = "github_inbox"
    one_replica = True
    interval_s = RECOVER_INTERVAL_S

    def __init__(self, inbox: GithubInbox) -> None:
        self._inbox = inbox

    async def run_once(self) -> None:
        await self._inbox.recover()


def github_inbox(context: ServiceContext) -> GithubInboxRecovery | None:
    if context.github_inbox is None:
        return None
    return GithubInboxRecovery(context.github_inbox)
