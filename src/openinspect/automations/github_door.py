"""The GitHub door of automations: a verified delivery fires every matching GitHub automation.

``/webhooks/github`` (signature checked, delivery id claimed once) hands each delivery to
``GithubDoor.dispatch(event, payload, delivery_id)``. It parses the delivery
(``automations.github``), and for every automation with a GitHub trigger, paused or not (the
engine records a paused one's firing as skipped):

1. **the repo**: GitHub's ``repository.full_name`` must be the automation's repo, resolved as a
   session resolves it (a registered repo's URL, or the URL itself) and read as a repository on
   the configured GitHub host (``scm.base.parse_repo_url``), case-insensitively;
2. **the filters** of its trigger (events, branches, labels, authors) and its JSONPath
   conditions on the whole payload;
3. then it fires: ``engine.fire(…, trigger="github", key=<the firing's key>)`` with the
   delivery's parsed fields as the untrusted block after the instructions; or, for a failed
   check on a pull request a session opened (``store.pulls``) that the automation's user may
   see, a **follow-up** into that session (below).

**A failed check on a session's own pull request** becomes ``engine.follow_up`` into the
session that opened it: the automation's instructions, then one untrusted block naming the
check, its conclusion, its link, its output and the end of its log (``automations.check_logs``).
The run's key is ``fix:<repo>#<n>:<head sha>``: one fix prompt per pushed commit, however many
checks or workflow runs fail on it (their deliveries find the first one's run). At most
``max_fix_attempts`` fix prompts are sent per pull request (the automation's follow-up runs with
the ``fix:<repo>#<n>:`` prefix that were not skipped); past that the firing is a ``skipped`` run
saying so ("3 fix attempts already made for PR #12"). ``when_busy="queue"``: a check that fails
while the session works on a prompt (its own fix, say) waits in the session's prompt queue, so
it is answered once the running prompt ends rather than lost. A pull request of a session the
automation's user may not see is treated as anyone's pull request: a new session of the
automation's own, never a prompt into the other one.

The answer is ``processed`` when at least one automation made (or found) a run, else
``ignored``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from openinspect.automations import check_logs
from openinspect.automations import github as events
from openinspect.automations.runs import AutomationEngine, prompt_of
from openinspect.automations.untrusted import render_untrusted
from openinspect.domain.automations import Automation, AutomationRun, GithubTrigger
from openinspect.domain.models import PullRequestRecord
from openinspect.errors import SessionNotFound
from openinspect.people.roles import ensure_can_see
from openinspect.scm.base import RepoRef, parse_repo_url
from openinspect.store import Store

if TYPE_CHECKING:  # githubkit is heavy: loaded with the client (people.service), not here
    from openinspect.scm.github import GitHub

log = logging.getLogger(__name__)
FIX_PREFIX = "fix:"


def fix_prefix(repo: str, number: int) -> str:
    """The key prefix of an automation's fix prompts for one pull request."""
    return f"{FIX_PREFIX}{repo.lower()}#{number}:"


class GithubDoor:
    def __init__(
        self, engine: AutomationEngine, store: Store, github: GitHub | None, web_url: str
    ) -> None:
        self.engine = engine
        self.store = store
        self.github = github
        self.web_url = web_url

    async def dispatch(self, event: str, payload: Mapping[str, Any], delivery_id: str) -> str:
        """Fire the automations ``event`` matches; ``processed`` or ``ignored``."""
        firing = events.parse(event, payload)
        if firing is None:
            return "ignored"
        runs: list[AutomationRun] = []
        for automation in await self.store.automations.with_trigger("github"):
            assert isinstance(automation.trigger, GithubTrigger)
            if await self.repo_of(automation) != firing.repo.lower():
                continue
            why = events.refusal(automation.trigger, firing)
            if why is None and automation.conditions:
                from openinspect.automations import conditions  # jsonpath: on first use

                decision = conditions.evaluate(automation.conditions, dict(payload))
                why = None if decision.matched else decision.summary
            if why is not None:
                log.debug("automation %s: %s %s: %s", automation.id, event, delivery_id, why)
                continue
            runs.append(await self._fire(automation, firing, event, delivery_id))
        return "processed" if runs else "ignored"

    async def repo_of(self, automation: Automation) -> str | None:
        """The automation's repo as GitHub's lower-cased ``owner/name``, or None when it is not
        a repository on the configured GitHub host."""
        registered = await self.store.repos.find(automation.repo)
        found = parse_repo_url(registered.url if registered else automation.repo, self.web_url)
        return found.slug.lower() if found is not None else None

    async def _fire(
        self, automation: Automation, firing: events.GithubFiring, event: str, delivery_id: str
    ) -> AutomationRun:
        source = f"GitHub (a {event} delivery, {delivery_id[:100]})"
        now = self.engine.now()
        if firing.check is None:
            context = render_untrusted(
                firing.data, source=source, received_at=now, summary=firing.title
            )
            return await self.engine.fire(
                automation.id,
                trigger="github",
                key=firing.key,
                payload=firing.data,
                context=context,
                origin_ref=firing.origin_ref,
            )
        pull = await self._session_pull(automation, firing)
        if pull is not None:
            return await self._fix(automation, firing, pull, source)
        found = await check_logs.report(self.github, _ref(firing.repo), firing.check)
        summary = f"{firing.title}\n{check_logs.render(found)}"
        context = render_untrusted(firing.data, source=source, received_at=now, summary=summary)
        return await self.engine.fire(
            automation.id,
            trigger="github",
            key=firing.key,
            payload=firing.data,
            context=context,
            origin_ref=firing.origin_ref,
        )

    async def _session_pull(
        self, automation: Automation, firing: events.GithubFiring
    ) -> PullRequestRecord | None:
        """The open pull request a session opened that the check is on, if the automation's
        user may see that session."""
        user = await self.store.users.get(automation.run_as)
        if user is None:
            return None
        for number in firing.pulls:
            record = await self.store.pulls.by_number(firing.repo, number)
            if record is None or record.state != "open":
                continue
            try:
                await ensure_can_see(self.store, user, record.session_id)
            except SessionNotFound:
                log.info(
                    "automation %s: PR #%s is of a session its user may not see",
                    automation.id,
                    number,
                )
                continue
            return record
        return None

    async def _fix(
        self,
        automation: Automation,
        firing: events.GithubFiring,
        pull: PullRequestRecord,
        source: str,
    ) -> AutomationRun:
        assert isinstance(automation.trigger, GithubTrigger)
        assert firing.check is not None
        prefix = fix_prefix(firing.repo, pull.number)
        key = f"{prefix}{firing.head_sha or firing.key}"
        made = await self.store.automations.count_follow_ups(automation.id, prefix)
        cap = automation.trigger.max_fix_attempts
        if made >= cap:
            return await self.engine.skip(
                automation.id,
                trigger="github",
                key=key,
                reason=f"{made} fix attempts already made for PR #{pull.number} (at most {cap})",
                payload=firing.data,
                origin_ref=firing.origin_ref,
                follow_up=True,
            )
        existing = await self.store.automations.run_by_key(automation.id, key)
        if existing is not None:  # another check of the same commit got here first
            return existing
        found = await check_logs.report(self.github, _ref(firing.repo), firing.check)
        summary = (
            f"{firing.title} on pull request #{pull.number} ({pull.branch}), attempt "
            f"{made + 1} of {cap} to fix it\n{check_logs.render(found)}"
        )
        context = render_untrusted(
            firing.data, source=source, received_at=self.engine.now(), summary=summary
        )
        ask = (
            f"A check failed on this session's pull request #{pull.number} ({pull.url}). "
            f"Find the cause in the report below, fix it, and let the change be pushed to "
            f"the same branch ({pull.branch}).\n\n{context}"
        )
        return await self.engine.follow_up(
            automation.id,
            session_id=pull.session_id,
            key=key,
            content=prompt_of(automation, ask),
            trigger="github",
            payload=firing.data,
            origin_ref=firing.origin_ref,
            when_busy="queue",
        )


def _ref(repo: str) -> RepoRef | None:
    try:
        return RepoRef.parse(repo)
    except ValueError:
        return None
