"""What each role may do with sessions and repos.

- ``admin``: everything — register repos, start sessions on any repo the server can reach (local
  paths included), see every session, change roles.
- ``member``: start sessions only on GitHub repositories (``https://<github>/owner/name``) or
  repos an admin registered — never on a local path or another host, which would let them read
  any git repository the server's machine can reach; see and steer only sessions they created or
  take part in.

Both roles pass the GitHub access check (``scm.access``) for every GitHub repo of a session,
unless ``github.access_check`` is off.
"""

from __future__ import annotations

from openinspect.domain.models import User
from openinspect.errors import (
    SESSION_NOT_FOUND_HINT,
    ForbiddenError,
    RepoAccessDenied,
    SessionNotFound,
)
from openinspect.scm.access import AccessChecker
from openinspect.scm.base import parse_repo_url
from openinspect.store import Store


def is_admin(user: User) -> bool:
    return user.role == "admin"


class SessionRepoPolicy:
    """Called by ``SessionManager.create`` before anything is fetched or stored; raises to
    refuse. ``repo`` is the registered repo's URL, or what the user typed."""

    def __init__(
        self, github_web_url: str, access: AccessChecker | None, access_check: bool
    ) -> None:
        self._web_url = github_web_url
        self._access = access
        self._access_check = access_check

    async def __call__(self, user: User, repo: str, registered: bool) -> None:
        ref = parse_repo_url(repo, self._web_url)
        if ref is None and not registered and not is_admin(user):
            raise ForbiddenError(
                "Members can start sessions only on GitHub repositories or registered repos, "
                "not on local paths or other hosts",
                hint=f"Use {self._web_url.rstrip('/')}/<owner>/<name>, or ask an admin to "
                "register the repo (POST /api/repos)",
            )
        if ref is None or not self._access_check:
            return
        if self._access is not None:
            await self._access.check(user, ref)
        elif not is_admin(user):
            raise RepoAccessDenied(
                f"Access to {ref.slug} cannot be checked: GitHub sign-in is not configured",
                hint="An admin sets OPENINSPECT_GITHUB__CLIENT_ID and __CLIENT_SECRET, or turns "
                "the check off with OPENINSPECT_GITHUB__ACCESS_CHECK=false",
            )


async def ensure_can_see(store: Store, user: User, session_id: str) -> None:
    """Admins see every session; members those they created or take part in. Anything else is
    reported as not found, so that ids of other people's sessions reveal nothing."""
    if is_admin(user):
        return
    if user.id not in await store.sessions.participant_roles(session_id):
        raise SessionNotFound(f"No session {session_id!r}", hint=SESSION_NOT_FOUND_HINT)
