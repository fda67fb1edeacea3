"""Allow-list entries: what parses, what a host and port match, and which entries may reach a
private address."""

from __future__ import annotations

import ipaddress

import pytest

from openinspect.egress.addresses import is_public
from openinspect.egress.allowlist import (
    AllowEntry,
    AllowList,
    BadEntry,
    normalize_host,
    parse_entries,
)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("PyPI.org.", "pypi.org"),
        ("*.Example.com", "*.example.com"),
        ("registry.internal:8443", "registry.internal:8443"),
        ("10.0.0.5:3141", "10.0.0.5:3141"),
        ("[FD00::5]:443", "[fd00::5]:443"),
        ("[::1]", "[::1]"),
    ],
)
def test_entries_parse_to_their_normal_form(text: str, shown: str) -> None:
    assert str(AllowEntry.parse(text)) == shown


@pytest.mark.parametrize(
    "text",
    [
        "",
        "*",
        "*.com",
        "*.10.0.0.1",
        "http://pypi.org",
        "pypi.org/simple",
        "::1",
        "a..b",
        "pypi.org:0",
        "pypi.org:65536",
        "pypi.org:x",
        "[::1",
        "x" * 300,
        "-bad.example",
        "2130706433",
        "0x7f.1",
        "a b",
    ],
)
def test_bad_entries_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(BadEntry):
        AllowEntry.parse(text)


def test_a_list_is_deduplicated_and_bounded() -> None:
    assert [str(e) for e in parse_entries(["a.example", "A.example.", "b.example"])] == [
        "a.example",
        "b.example",
    ]
    with pytest.raises(BadEntry, match="at most"):
        parse_entries([f"h{n}.example" for n in range(201)])


def test_ports_hosts_and_wildcards_match_as_documented() -> None:
    allow = AllowList(parse_entries(["pypi.org", "*.example.com", "mirror.internal:3141"]))
    assert allow.judge("pypi.org", 443, tunnel=True).entry is not None
    assert allow.judge("pypi.org", 80, tunnel=False).entry is not None
    assert allow.judge("pypi.org", 80, tunnel=True).entry is None  # CONNECT: 443 only
    assert allow.judge("pypi.org", 22, tunnel=True).host_listed
    assert allow.judge("evil.pypi.org", 443, tunnel=True).entry is None
    assert allow.judge("a.b.example.com", 443, tunnel=True).entry is not None
    assert allow.judge("example.com", 443, tunnel=True).entry is None  # a wildcard: below only
    assert allow.judge("notexample.com", 443, tunnel=True).entry is None
    assert allow.judge("mirror.internal", 3141, tunnel=False).exact
    assert allow.judge("mirror.internal", 443, tunnel=True).entry is None
    assert not allow.judge("a.example.com", 443, tunnel=True).exact


def test_an_exact_entry_wins_over_a_wildcard() -> None:
    allow = AllowList(parse_entries(["*.corp.example", "git.corp.example"]))
    assert allow.judge("git.corp.example", 443, tunnel=True).exact
    assert not allow.judge("wiki.corp.example", 443, tunnel=True).exact


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("151.101.0.223", True),
        ("2a04:4e42::223", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:151.101.0.223", True),
    ],
)
def test_only_global_unicast_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_host_names_are_normalized_or_refused() -> None:
    assert normalize_host("Files.PythonHosted.org.") == "files.pythonhosted.org"
    assert normalize_host("::FFFF:7f00:1") == "::ffff:7f00:1"
    assert normalize_host("evil.example\r\nX: y") is None
    assert normalize_host("") is None


def test_the_servers_list_is_checked_when_the_settings_load() -> None:
    from pydantic import ValidationError

    from openinspect.settings import EgressSettings

    assert EgressSettings(allow=["PyPI.org", "pypi.org"]).allow == ["pypi.org"]
    assert "github.com" not in EgressSettings().allow  # see DEFAULT_EGRESS_ALLOW
    with pytest.raises(ValidationError, match="is not a host name"):
        EgressSettings(allow=["*"])
