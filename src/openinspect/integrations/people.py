"""Who a person from an integration is here, the parts every door shares: the one openinspect
user with a given email (two with the same email match nobody), and the integration's own
user (``<login>@<domain>``, made on first use as a member) for people who match nobody."""

from __future__ import annotations

from openinspect.domain.models import User
from openinspect.errors import ConflictError
from openinspect.store import Store

EMAIL_MAX = 320


async def only_user_with_email(store: Store, email: str | None) -> User | None:
    """The one user whose email is ``email``; None for none, several, or no usable email."""
    if not isinstance(email, str) or "@" not in email or len(email) > EMAIL_MAX:
        return None
    matches = await store.users.with_email(email)
    return matches[0] if len(matches) == 1 else None


async def app_user(store: Store, login: str, email_domain: str) -> User:
    """The integration's own user, ``login`` with the email ``login@email_domain`` (a domain
    no real profile can have, e.g. ``slack.invalid``), made on first use as a member."""
    email = f"{login}@{email_domain}"
    found = await store.users.with_email(email)
    if found:
        return found[0]
    try:
        return await store.users.add(name=login, email=email, role="member")
    except ConflictError:  # made meanwhile by another request
        return (await store.users.with_email(email))[0]
