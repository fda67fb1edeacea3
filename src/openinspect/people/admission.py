"""Who may sign in: the allowlists of ``auth`` settings, applied to a person GitHub vouched for.

A person is admitted when their login is in ``allowed_users``, or they belong to an org in
``allowed_orgs``, or one of their **verified** emails has a domain in ``allowed_email_domains``
(exact domain, no subdomains), or ``allow_all_users`` is on. Logins, orgs and domains compare
case-insensitively. With no list and no flag nobody is admitted: sign-in fails closed.

``allow_all_users`` together with a list is refused at start (a ``ConfigError``): the lists would
silently mean nothing, which is not what whoever wrote them wanted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from openinspect.errors import ConfigError, SignInRefused
from openinspect.settings import AuthSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifiedEmail:
    email: str
    verified: bool


def _norm(values: Sequence[str]) -> frozenset[str]:
    return frozenset(v.strip().lower().lstrip("@") for v in values if v.strip())


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].strip().lower()


class Admission:
    def __init__(self, auth: AuthSettings) -> None:
        self.users = _norm(auth.allowed_users)
        self.orgs = _norm(auth.allowed_orgs)
        self.domains = _norm(auth.allowed_email_domains)
        self.allow_all = auth.allow_all_users
        self.admins = _norm(auth.admin_users)
        if self.allow_all and self.has_lists:
            raise ConfigError(
                "auth.allow_all_users is on and an allowlist is set too; the lists would mean "
                "nothing",
                hint="Unset OPENINSPECT_AUTH__ALLOW_ALL_USERS, or remove the allowed_* lists",
            )

    @property
    def has_lists(self) -> bool:
        return bool(self.users or self.orgs or self.domains)

    @property
    def closed(self) -> bool:
        """Nobody can sign in: no list and no flag."""
        return not self.allow_all and not self.has_lists

    @property
    def needs_orgs(self) -> bool:
        return bool(self.orgs)

    @property
    def needs_emails(self) -> bool:
        return bool(self.domains)

    def is_admin(self, login: str) -> bool:
        return login.lower() in self.admins

    def warn_if_closed(self) -> None:
        if self.closed:
            log.warning(
                "GitHub sign-in is configured but no allowlist is set: nobody can sign in. "
                "Set OPENINSPECT_AUTH__ALLOWED_USERS, __ALLOWED_ORGS or __ALLOWED_EMAIL_DOMAINS."
            )
        elif self.allow_all:
            log.warning("auth.allow_all_users is on: ANY GitHub user can sign in to this server")

    async def check(
        self,
        login: str,
        orgs: Callable[[], Awaitable[Sequence[str]]],
        emails: Callable[[], Awaitable[Sequence[VerifiedEmail]]],
    ) -> str:
        """Admit ``login`` or raise ``SignInRefused``. ``orgs`` and ``emails`` are fetched
        only when a list needs them. Returns the rule that admitted them (for the log)."""
        if self.allow_all:
            return "allow_all_users"
        if login.lower() in self.users:
            return "allowed_users"
        if self.orgs and self.orgs & _norm(await orgs()):
            return "allowed_orgs"
        if self.domains and any(
            e.verified and email_domain(e.email) in self.domains for e in await emails()
        ):
            return "allowed_email_domains"
        raise self.refusal(login)

    def refusal(self, login: str) -> SignInRefused:
        checked = [
            label
            for label, values in (
                ("allowed users", self.users),
                ("allowed organisations", self.orgs),
                ("allowed email domains (verified emails only)", self.domains),
            )
            if values
        ]
        if not checked:
            return SignInRefused(
                f"@{login} cannot sign in: this server admits nobody yet (no allowlist is set)",
                hint="An operator sets OPENINSPECT_AUTH__ALLOWED_USERS, __ALLOWED_ORGS or "
                "__ALLOWED_EMAIL_DOMAINS",
            )
        return SignInRefused(
            f"@{login} is not admitted: checked {', '.join(checked)}",
            hint="Ask an admin of this server to admit you",
        )
