"""The proxy's request parsing: what it forwards, in which form, and what it refuses."""

from __future__ import annotations

import pytest

from openinspect.egress.proxy import Refused, parse_head, refusal_response


def test_connect_names_host_and_port() -> None:
    request = parse_head(b"CONNECT Files.PythonHosted.org:443 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (request.method, request.host, request.port, request.tunnel) == (
        "CONNECT",
        "files.pythonhosted.org",
        443,
        True,
    )
    assert request.upstream_head == b""


def test_connect_to_an_ipv6_literal() -> None:
    request = parse_head(b"CONNECT [fd00::5]:8443 HTTP/1.1\r\n\r\n")
    assert (request.host, request.port, request.authority) == ("fd00::5", 8443, "[fd00::5]:8443")


def test_a_plain_request_goes_on_in_origin_form_with_its_host_and_connection_close() -> None:
    request = parse_head(
        b"POST http://deb.debian.org/debian/dists?x=1 HTTP/1.1\r\nHost: spoofed.example\r\n"
        b"Content-Length: 3\r\nConnection: keep-alive\r\nProxy-Authorization: Basic eA==\r\n\r\n"
    )
    assert (request.method, request.host, request.port, request.tunnel) == (
        "POST",
        "deb.debian.org",
        80,
        False,
    )
    assert request.upstream_head == (
        b"POST /debian/dists?x=1 HTTP/1.1\r\nContent-Length: 3\r\nHost: deb.debian.org\r\n"
        b"Connection: close\r\n\r\n"
    )


def test_a_port_in_the_url_is_kept_in_the_host_header() -> None:
    request = parse_head(b"GET http://127.0.0.1:3141 HTTP/1.1\r\n\r\n")
    assert request.port == 3141
    assert b"GET / HTTP/1.1\r\nHost: 127.0.0.1:3141\r\n" in request.upstream_head


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET http://x/ HTTP/1.1\r\n folded\r\n\r\n", 400),
        (b"GET http://x/ HTTP/1.1\r\nNoColon\r\n\r\n", 400),
        (b"GET http://x/\x7f HTTP/1.1\r\n\r\n", 400),
        (b"GET ftp://x/ HTTP/1.1\r\n\r\n", 400),
        (b"BREW http://x/ HTTP/1.1\r\n\r\n", 405),
        (b"CONNECT x:99999 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT evil_host\xff:443 HTTP/1.1\r\n\r\n", 400),
    ],
)
def test_bad_heads_are_refused(head: bytes, status: int) -> None:
    with pytest.raises(Refused) as refused:
        parse_head(head)
    assert refused.value.status == status


def test_a_refusal_is_plain_text_with_its_code() -> None:
    answer = refusal_response(Refused(403, "host_not_allowed", 'host "x.example" is not allowed'))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"X-Openinspect-Egress: host_not_allowed" in head
    assert body == b'egress: host "x.example" is not allowed\n'
    assert f"Content-Length: {len(body)}".encode() in head
