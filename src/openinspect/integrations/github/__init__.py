"""The GitHub App's bot: reviews pull requests, answers mentions, fixes on request, and feeds
review feedback on a session's pull request back into that session.

``/webhooks/github`` verifies a delivery and claims its id once, then hands it to every
:class:`GithubHandler` the control plane registered (``ControlPlane.github_handlers``); what
they post goes through the outbox (``integrations.outbox``), once.
"""

from __future__ import annotations

from typing import Any, Protocol


class GithubHandler(Protocol):
    async def dispatch(self, event: str, payload: dict[str, Any], delivery_id: str) -> str:
        """Act on a verified delivery: ``processed`` or ``ignored``."""
        ...
