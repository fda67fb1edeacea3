"""What the GitHub bot's handlers share: who the bot is, who may ask it, who a GitHub user is
here, and the outbox its posts go through.

- **The bot**: ``bot.slug``, else the App's slug read from GitHub once (``GET /app``); its
  user is ``<slug>[bot]``. Its own comments never start anything.
- **Who may ask**: a login in ``bot.allowed_users`` (any case), else whoever has write,
  maintain or admin on the repo, read from GitHub each time. When GitHub cannot be asked, the
  answer is no (fail closed).
- **Who a GitHub user is here**: the openinspect account signed in with that GitHub account
  (``store.identities``, by GitHub's numeric user id, which a rename does not change).
- **Posts** are outbox rows (source ``github``), written in the caller's transaction and
  delivered once by the ``outbox`` service; :meth:`BotDeps.wake` after the commit.
  Target and body by kind: ``comment`` ``{repo, number}`` / ``{text}``; ``reaction``
  ``{repo, subject: issue|issue_comment|review_comment, id}`` / ``{content}``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from openinspect.bus import Bus
from openinspect.domain.models import User
from openinspect.errors import ScmError
from openinspect.integrations.outbox import wake
from openinspect.scm.base import RepoRef
from openinspect.sessions.commands import CommandHandler
from openinspect.settings import Settings
from openinspect.store import Store

if TYPE_CHECKING:  # githubkit is heavy: loaded with the client (people.service), not here
    from openinspect.scm.github import GitHub

log = logging.getLogger(__name__)
SOURCE = "github"
BOT_SUFFIX = "[bot]"
WRITERS = frozenset({"admin", "maintain", "write"})
"""GitHub permissions that may push to a repository's branches."""
ReactionSubject = str  # "issue" | "issue_comment" | "review_comment"


@dataclass
class BotDeps:
    settings: Settings
    store: Store
    bus: Bus
    commands: CommandHandler
    github: GitHub
    _slug: str | None = field(default=None, init=False)
    _slug_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    async def slug(self) -> str:
        """The App's slug: the setting, else GitHub's answer (asked once)."""
        configured = self.settings.github.bot.slug
        if configured:
            return configured
        async with self._slug_lock:
            if self._slug is None:
                self._slug = await self.github.app_slug()
            return self._slug

    async def is_bot(self, login: str | None) -> bool:
        """Whether ``login`` is the App's own bot user."""
        if not login:
            return False
        return login.lower() == (await self.slug()).lower() + BOT_SUFFIX

    async def permission(self, repo: RepoRef, login: str) -> str:
        """``login``'s permission on ``repo`` as GitHub says now; ``none`` when it cannot say."""
        try:
            return await self.github.permission(repo, login)
        except ScmError as exc:
            log.warning("github: the permission of %s on %s is unknown (%s)", login, repo, exc.code)
            return "none"

    async def allowed(self, repo: RepoRef, login: str) -> bool:
        """Whether ``login`` may ask the bot for something on ``repo``."""
        listed = self.settings.github.bot.allowed_users
        if listed:
            return login.lower() in {name.lower() for name in listed}
        return await self.permission(repo, login) in WRITERS

    async def linked_user(self, github_user_id: int) -> User | None:
        """The openinspect account of GitHub user ``github_user_id``, if they signed in here."""
        identity = await self.store.identities.find("github", str(github_user_id))
        if identity is None:
            return None
        return await self.store.users.get(identity.user_id)

    async def post(
        self,
        conn: AsyncConnection,
        *,
        key: str,
        kind: str,
        target: dict[str, Any],
        body: dict[str, Any],
        session_id: str | None = None,
    ) -> bool:
        """Decide a post once (by ``key``) in the caller's transaction; call :meth:`wake`
        after it commits."""
        return await self.store.outbox.enqueue(
            conn,
            source=SOURCE,
            key=key,
            kind=kind,
            target=target,
            body=body,
            session_id=session_id,
        )

    async def post_now(
        self, *, key: str, kind: str, target: dict[str, Any], body: dict[str, Any]
    ) -> bool:
        """:meth:`post` in a transaction of its own, then :meth:`wake`."""
        async with self.store.engine.begin() as conn:
            made = await self.post(conn, key=key, kind=kind, target=target, body=body)
        await self.wake()
        return made

    async def react(self, repo: str, subject: ReactionSubject, object_id: int) -> None:
        """👀 on ``subject`` ``object_id`` of ``repo``, once (``reaction:<repo>:<kind>:<id>``)."""
        await self.post_now(
            key=f"reaction:{repo.lower()}:{subject}:{object_id}",
            kind="reaction",
            target={"repo": repo, "subject": subject, "id": object_id},
            body={"content": "eyes"},
        )

    async def wake(self) -> None:
        await wake(self.bus)
