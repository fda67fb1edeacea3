"""Allow-list entries and matching: which hosts and ports a box may reach through the proxy.

An entry is one of::

    pypi.org              that host, on port 443 (CONNECT) or 80 (plain HTTP)
    *.example.com         any host under example.com (not example.com itself), same ports
    pypi.internal:8443    that host on that port only, whichever the method
    10.0.0.5:3141         an IP literal: IP addresses are reached only when listed so
    [fd00::5]:3141        an IPv6 literal, with its port

Hosts are compared lowercased, without a trailing dot. An exact entry (not a ``*.`` wildcard)
also lets its host resolve to a private, loopback or link-local address (an internal mirror);
a wildcard never does, so a name under an allowed domain cannot be pointed at the metadata
service or the server's own loopback (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_ENTRY_CHARS = 260
MAX_ENTRIES = 200
MAX_HOST_CHARS = 253
HTTPS_PORT = 443
HTTP_PORT = 80
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
"""A last label like this makes ``getaddrinfo`` read the name as an address (``0x7f.1``,
``2130706433``): no such name is a host."""
WILDCARD = "*."


class BadEntry(ValueError):
    """An allow-list entry that is not a host, ``*.suffix`` or IP, with an optional port."""


def normalize_host(host: str) -> str | None:
    """``host`` lowercased without a trailing dot, or None when it is no hostname or IP
    literal (IPv6 without brackets)."""
    host = host.strip().lower().removesuffix(".")
    if not host or len(host) > MAX_HOST_CHARS:
        return None
    if ip_literal(host) is not None:
        return str(ipaddress.ip_address(host))
    labels = host.split(".")
    if all(_LABEL.match(label) for label in labels) and not _NUMERIC_LABEL.match(labels[-1]):
        return host
    return None


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address, when it is one."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def split_host_port(text: str) -> tuple[str, int | None]:
    """``host[:port]`` or ``[v6][:port]`` → (host, port or None); raises ``ValueError``."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("an IPv6 address is written [address] or [address]:port")
        port_text = rest[1:] if rest else None
    elif text.count(":") > 1:
        raise ValueError("an IPv6 address is written in brackets: [address]:port")
    else:
        host, colon, port_text_ = text.partition(":")
        port_text = port_text_ if colon else None
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"a port is a number from 1 to 65535, got {port_text[:10]!r}")
    return host, int(port_text)


@dataclass(frozen=True)
class AllowEntry:
    """One parsed entry: ``host`` is the suffix (``example.com``) for a wildcard."""

    host: str
    wildcard: bool
    port: int | None

    @classmethod
    def parse(cls, text: str) -> AllowEntry:
        """Check one entry; raises :class:`BadEntry` saying what is wrong."""
        raw = text.strip()
        if not raw or len(raw) > MAX_ENTRY_CHARS:
            raise BadEntry(f"an allow-list entry is 1 to {MAX_ENTRY_CHARS} characters")
        wildcard = raw.startswith(WILDCARD)
        try:
            host_text, port = split_host_port(raw.removeprefix(WILDCARD) if wildcard else raw)
        except ValueError as exc:
            raise BadEntry(f"{raw[:80]!r}: {exc}") from None
        host = normalize_host(host_text)
        if host is None or (wildcard and (ip_literal(host) is not None or "." not in host)):
            raise BadEntry(
                f"{raw[:80]!r} is not a host name, '*.domain' or IP address "
                "(e.g. pypi.org, *.example.com, registry.internal:8443, 10.0.0.5:3141)"
            )
        return cls(host, wildcard, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = WILDCARD + host if self.wildcard else host
        return text if self.port is None else f"{text}:{self.port}"

    def matches_host(self, host: str) -> bool:
        """``host`` (normalized) is this entry's host, or under its domain for a wildcard."""
        if self.wildcard:
            return host.endswith("." + self.host)
        return host == self.host

    def matches_port(self, port: int, *, tunnel: bool) -> bool:
        """A listed port is the only one; otherwise 443 for a tunnel, 80 for plain HTTP."""
        if self.port is not None:
            return port == self.port
        return port == (HTTPS_PORT if tunnel else HTTP_PORT)


def parse_entries(texts: Iterable[str]) -> tuple[AllowEntry, ...]:
    """Every entry of ``texts`` (deduplicated, in order); raises :class:`BadEntry`."""
    entries: dict[str, AllowEntry] = {}
    for text in texts:
        entry = AllowEntry.parse(text)
        entries.setdefault(str(entry), entry)
    if len(entries) > MAX_ENTRIES:
        raise BadEntry(f"an allow-list holds at most {MAX_ENTRIES} entries")
    return tuple(entries.values())


@dataclass(frozen=True)
class Verdict:
    """What the allow-list says of one host and port: the entry that allows it (None: refused),
    and whether the host is listed at all (a refusal then names the port)."""

    entry: AllowEntry | None
    host_listed: bool

    @property
    def exact(self) -> bool:
        """Allowed by an exact entry (which may resolve to a private address)."""
        return self.entry is not None and not self.entry.wildcard


@dataclass(frozen=True)
class AllowList:
    """The entries one box may reach: the server's and its repo's."""

    entries: tuple[AllowEntry, ...]

    def judge(self, host: str, port: int, *, tunnel: bool) -> Verdict:
        """The verdict for ``host`` (normalized) on ``port``; an exact entry wins over a
        wildcard, so a listed host keeps its private addresses."""
        listed = [e for e in self.entries if e.matches_host(host)]
        fitting = [e for e in listed if e.matches_port(port, tunnel=tunnel)]
        fitting.sort(key=lambda e: e.wildcard)
        return Verdict(fitting[0] if fitting else None, bool(listed))
