"""Which repo a Slack request is about.

In order: a registered repo the text names (its name, or the ``owner/name`` of its GitHub URL,
as a whole word); the channel's repo (``slack.channel_repos``); the user's App Home default;
the only registered repo, when there is one; else the classifier (``integrations.routing``,
with ``slack.classifier_model``). An unsure answer or a failure is :class:`Unsure`, with up to
:data:`CANDIDATES_MAX` repos for the author to pick from (``openinspect_pick_repo`` buttons).

Only registered repos the user may use count (``people.repo_policy``); a repo named by the
channel or the App Home that the user may not use is skipped, not an error.
"""

from __future__ import annotations

from openinspect.domain.models import User
from openinspect.integrations.routing import (
    CANDIDATES_MAX,
    RepoChoice,
    RepoRouting,
    Routed,
    Unsure,
    named_in,
)

__all__ = ["CANDIDATES_MAX", "RepoChoice", "RepoRouter", "Routed", "Unsure", "named_in"]


class RepoRouter(RepoRouting):
    source = "a chat message"

    @property
    def classifier_model(self) -> str | None:
        return self._settings.slack.classifier_model

    async def route(
        self, user: User, text: str, *, channel_id: str, default_repo: str | None
    ) -> Routed | Unsure:
        repos = await self.usable(user)
        if not repos:
            return Unsure([])
        named = named_in(text, repos, self.web_url)
        if named is not None:
            return Routed(named.name, "text")
        channel = self.lookup(self._settings.slack.channel_repos.get(channel_id), repos)
        if channel is not None:
            return Routed(channel.name, "channel")
        home = self.lookup(default_repo, repos)
        if home is not None:
            return Routed(home.name, "home")
        if len(repos) == 1:
            return Routed(repos[0].name, "only")
        return await self.classify(text, repos)
