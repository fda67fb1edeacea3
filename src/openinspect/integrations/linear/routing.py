"""Which repo a Linear issue is about.

In order: the issue's project (``linear.project_repos``, by project id or name); its team
(``linear.team_repos``, by team key); its labels (``linear.label_repos``, the first label that
names one); a registered repo the issue's text names; the only registered repo, when there is
one; else the classifier (``integrations.routing``, with ``linear.classifier_model``), given the
issue's title and description. An unsure answer is :class:`Unsure`: the agent asks (an
``elicitation`` with the candidates as options) and the person's next prompt names the repo
(:meth:`LinearRouter.answer`).

Only registered repos the person may use count (``people.repo_policy``); a mapping naming a
repo they may not use is skipped, not an error.
"""

from __future__ import annotations

from openinspect.domain.models import User
from openinspect.integrations.linear.events import Issue
from openinspect.integrations.routing import RepoRouting, Routed, Unsure, named_in


def issue_text(issue: Issue | None) -> str:
    if issue is None:
        return ""
    return "\n\n".join(p for p in (issue.title, issue.description or "") if p)


class LinearRouter(RepoRouting):
    source = "a Linear issue"

    @property
    def classifier_model(self) -> str | None:
        return self._settings.linear.classifier_model

    async def route(self, user: User, issue: Issue | None, text: str = "") -> Routed | Unsure:
        """The repo for ``issue`` (``text``: what the person wrote with it, if anything)."""
        repos = await self.usable(user)
        if not repos:
            return Unsure([])
        settings = self._settings.linear
        if issue is not None:
            mapped: list[tuple[str, str | None]] = []
            if issue.project is not None:
                by = settings.project_repos
                mapped.append(("project", by.get(issue.project.id) or by.get(issue.project.name)))
            if issue.team is not None:
                mapped.append(("team", settings.team_repos.get(issue.team.key)))
            mapped += [("label", settings.label_repos.get(label.name)) for label in issue.labels]
            for how, key in mapped:
                repo = self.lookup(key, repos)
                if repo is not None:
                    return Routed(repo.name, how)
        about = "\n\n".join(p for p in (text, issue_text(issue)) if p)
        named = named_in(about, repos, self.web_url)
        if named is not None:
            return Routed(named.name, "text")
        if len(repos) == 1:
            return Routed(repos[0].name, "only")
        return await self.classify(about, repos)

    async def answer(self, user: User, reply: str) -> str | None:
        """The repo a person's reply to the question names (an option's value, a name, an
        ``owner/name`` or a URL), or None."""
        repos = await self.usable(user)
        found = self.lookup(reply.strip(), repos) or named_in(reply, repos, self.web_url)
        return found.name if found is not None else None
