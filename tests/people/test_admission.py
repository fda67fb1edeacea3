"""Admission by allowlists: users, orgs, verified email domains; fail closed."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from openinspect.errors import ConfigError, SignInRefused
from openinspect.people.admission import Admission, VerifiedEmail
from openinspect.settings import AuthSettings


class Calls:
    def __init__(self, orgs: Sequence[str] = (), emails: Sequence[VerifiedEmail] = ()) -> None:
        self._orgs, self._emails = list(orgs), list(emails)
        self.asked: list[str] = []

    async def orgs(self) -> Sequence[str]:
        self.asked.append("orgs")
        return self._orgs

    async def emails(self) -> Sequence[VerifiedEmail]:
        self.asked.append("emails")
        return self._emails


async def _check(auth: AuthSettings, login: str, calls: Calls) -> str:
    return await Admission(auth).check(login, calls.orgs, calls.emails)


async def test_allowed_users_case_insensitive_without_asking_github() -> None:
    calls = Calls()
    auth = AuthSettings(allowed_users=["Ada"], allowed_orgs=["acme"])
    assert await _check(auth, "ada", calls) == "allowed_users"
    assert calls.asked == []


async def test_orgs_and_verified_email_domains() -> None:
    auth = AuthSettings(allowed_orgs=["Acme"], allowed_email_domains=["@Example.com"])
    assert await _check(auth, "bob", Calls(orgs=["other", "ACME"])) == "allowed_orgs"
    verified = VerifiedEmail("bob@example.COM", verified=True)
    assert await _check(auth, "bob", Calls(emails=[verified])) == "allowed_email_domains"
    # An unverified address, or a subdomain, does not count.
    for emails in (
        [VerifiedEmail("bob@example.com", verified=False)],
        [VerifiedEmail("bob@eng.example.com", verified=True)],
    ):
        with pytest.raises(SignInRefused) as refused:
            await _check(auth, "bob", Calls(emails=emails))
        message = refused.value.message
        assert "allowed organisations" in message and "allowed email domains" in message
        assert "allowed users" not in message  # only the lists that are set
        assert "acme" not in message.lower() and "example.com" not in message  # no contents


async def test_no_list_admits_nobody_and_allow_all_admits_everyone() -> None:
    with pytest.raises(SignInRefused, match="admits nobody"):
        await _check(AuthSettings(), "ada", Calls())
    assert await _check(AuthSettings(allow_all_users=True), "anyone", Calls()) == "allow_all_users"


def test_allow_all_with_a_list_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="allow_all_users"):
        Admission(AuthSettings(allow_all_users=True, allowed_orgs=["acme"]))


def test_admins() -> None:
    admission = Admission(AuthSettings(admin_users=["Root"]))
    assert admission.is_admin("root") and not admission.is_admin("ada")
