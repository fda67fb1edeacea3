"""pkt-line framing, the push request parser, gzip bodies, and report-status reading."""

from __future__ import annotations

import gzip
import os
import subprocess
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from openinspect.errors import InvalidInput
from openinspect.scm.pktline import (
    DELIM,
    FLUSH,
    MAX_PKT_PAYLOAD,
    RESPONSE_END,
    SIDEBAND_64K_PAYLOAD,
    SIDEBAND_PAYLOAD,
    PktDecoder,
    ReportStatusReader,
    Special,
    decode_all,
    encode,
    encode_sideband,
    gunzip,
    prepend,
    read_push_request,
    report_status,
)
from openinspect.scm.push_rules import RefUpdate

ZERO = "0" * 40
A = "a" * 40
B = "b" * 40
CAPS = "report-status side-band-64k quiet object-format=sha1 agent=git/2.39.5"
PACK = b"PACK\x00\x00\x00\x02" + os.urandom(3000)


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


def push_body(
    commands: Iterable[tuple[str, str, str]],
    caps: str = CAPS,
    *,
    shallow: Iterable[str] = (),
    options: Iterable[str] | None = None,
    pack: bytes = PACK,
) -> bytes:
    out = b"".join(encode(f"shallow {oid}") for oid in shallow)
    for i, (old, new, ref) in enumerate(commands):
        out += encode(f"{old} {new} {ref}\0{caps}" if i == 0 else f"{old} {new} {ref}")
    out += FLUSH
    if options is not None:
        out += b"".join(encode(f"{o}\n") for o in options) + FLUSH
    return out + pack


# ---------------------------------------------------------------- framing


def test_encode_and_decode() -> None:
    assert encode("hello\n") == b"000ahello\n"
    assert encode(b"") == b"0004"
    data = encode("a") + FLUSH + encode("b") + DELIM + RESPONSE_END
    assert decode_all(data) == [b"a", Special.FLUSH, b"b", Special.DELIM, Special.RESPONSE_END]
    biggest = encode(b"x" * MAX_PKT_PAYLOAD)
    assert biggest[:4] == b"fff0"
    assert decode_all(biggest) == [b"x" * MAX_PKT_PAYLOAD]
    with pytest.raises(ValueError, match="at most 65516"):
        encode(b"x" * (MAX_PKT_PAYLOAD + 1))


@pytest.mark.parametrize("header", [b"zzzz", b"0003", b"fff1", b"ffff", b" 00a", b"+00a"])
def test_bad_lengths_are_refused(header: bytes) -> None:
    with pytest.raises(InvalidInput, match="pkt-line length"):
        decode_all(header + b"x" * 20)


def test_decoder_is_incremental() -> None:
    data = encode("first\n") + FLUSH + encode(b"\x01" + b"y" * 300) + DELIM
    decoder = PktDecoder()
    packets = []
    for byte in data:
        packets += decoder.feed(bytes([byte]))
    assert packets == [b"first\n", Special.FLUSH, b"\x01" + b"y" * 300, Special.DELIM]
    assert decoder.pending == 0
    assert decoder.feed(b"00") == []
    assert decoder.pending == 2
    with pytest.raises(InvalidInput, match="ends inside a packet"):
        decode_all(encode("abc")[:-1])


def test_sideband_splits_long_data() -> None:
    data = os.urandom(SIDEBAND_64K_PAYLOAD * 2 + 10)
    packets = decode_all(encode_sideband(1, data))
    assert [len(p) for p in packets if isinstance(p, bytes)] == [
        SIDEBAND_64K_PAYLOAD + 1,
        SIDEBAND_64K_PAYLOAD + 1,
        11,
    ]
    assert b"".join(p[1:] for p in packets if isinstance(p, bytes)) == data
    small = decode_all(encode_sideband(2, b"z" * 2000, max_payload=SIDEBAND_PAYLOAD))
    assert all(isinstance(p, bytes) and len(p) <= 996 and p[0] == 2 for p in small)


# ---------------------------------------------------------------- push requests


@pytest.mark.parametrize("chunk", [1, 7, 64, 65536])
async def test_push_request_at_any_chunking(chunk: int) -> None:
    body = push_body([(A, B, "refs/heads/openinspect/s1"), (ZERO, A, "refs/heads/openinspect/new")])
    stream = chunks_of(body, chunk)
    push = await read_push_request(stream)
    assert push.commands == [
        RefUpdate(A, B, "refs/heads/openinspect/s1"),
        RefUpdate(ZERO, A, "refs/heads/openinspect/new"),
    ]
    assert push.capabilities == CAPS.split()
    assert push.has("side-band-64k") and push.wants_report
    assert push.sideband_payload == SIDEBAND_64K_PAYLOAD
    # Nothing is lost or re-encoded: head + rest + the unread stream is the body, byte for byte.
    assert push.head + push.rest + await collect(stream) == body
    assert push.head == body[: body.index(FLUSH + PACK) + 4]


async def test_push_request_with_shallow_lines_options_and_trailing_newlines() -> None:
    body = (
        encode(f"shallow {B}\n")
        + encode(f"{A} {ZERO} refs/heads/gone\0report-status-v2 side-band push-options\n")
        + encode(f"{ZERO} {B} refs/heads/new\n")
        + FLUSH
        + encode("ci.skip\n")
        + encode("merge_request.create\n")
        + FLUSH
    )
    push = await read_push_request(chunks_of(body, 3))
    assert push.shallow == [B]
    assert [c.ref for c in push.commands] == ["refs/heads/gone", "refs/heads/new"]
    assert push.commands[0].is_delete and push.commands[1].is_create
    assert push.push_options == ["ci.skip", "merge_request.create"]
    assert push.sideband_payload == SIDEBAND_PAYLOAD
    assert push.head == body and push.rest == b""


async def test_push_options_only_when_negotiated() -> None:
    pack = encode("not-an-option") + FLUSH
    body = push_body([(A, B, "refs/heads/x")], "report-status", pack=pack)
    stream = chunks_of(body, 5)
    push = await read_push_request(stream)
    assert push.push_options == []
    assert push.sideband_payload is None
    assert push.head == body[: -len(pack)]  # the rest is left for receive-pack, unparsed
    assert push.rest + await collect(stream) == pack


async def test_a_bare_flush_is_an_empty_push() -> None:
    push = await read_push_request(chunks_of(FLUSH, 1))
    assert push.commands == [] and push.head == FLUSH and push.rest == b""


async def test_sha256_commands() -> None:
    old, new = "0" * 64, "c" * 64
    push = await read_push_request(chunks_of(push_body([(old, new, "refs/heads/x")]), 100))
    assert push.commands == [RefUpdate(old, new, "refs/heads/x")]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "ended inside its command list"),
        (encode(f"{A} {B} refs/heads/x\0caps"), "ended inside its command list"),
        (encode(f"{A} {B} refs/heads/x\0caps")[:-3], "ended inside its command list"),
        (encode(f"{A} {B}\0caps") + FLUSH, "Expected a push command"),
        (encode(f"{A[:-1]} {B} refs/heads/x\0caps") + FLUSH, "Expected a push command"),
        (encode(f"{A.upper()} {B} refs/heads/x\0caps") + FLUSH, "Expected a push command"),
        (encode(f"{A} {B} refs/heads/x extra\0caps") + FLUSH, "Expected a push command"),
        (encode(b"%s %s refs/heads/\xff\0caps" % (A.encode(), B.encode())) + FLUSH, "not UTF-8"),
        (encode(f"{A} {B} refs/heads/x\0caps") + DELIM, "Unexpected delim packet"),
        (encode("push-cert\0report-status\n") + encode("certificate version 0.1\n"), "Signed"),
        (b"zzzz", "pkt-line length"),
    ],
)
async def test_bad_push_requests(body: bytes, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        await read_push_request(chunks_of(body, 4))


async def test_the_command_list_is_bounded() -> None:
    many = [(ZERO, A, f"refs/heads/openinspect/b{i}") for i in range(11)]
    with pytest.raises(InvalidInput, match="at most 10 refs"):
        await read_push_request(chunks_of(push_body(many), 50), max_commands=10)
    assert len((await read_push_request(chunks_of(push_body(many[:10]), 50))).commands) == 10

    long = [(ZERO, A, "refs/heads/openinspect/" + "x" * 900) for _ in range(3)]
    with pytest.raises(InvalidInput, match="larger than 2000 bytes"):
        await read_push_request(chunks_of(push_body(long), 50), max_head_bytes=2000)


async def test_the_head_limit_stops_reading_early() -> None:
    """A client that never sends a flush cannot make the parser read more than the limit."""
    read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal read
        first = encode(f"{ZERO} {A} refs/heads/x\0{CAPS}")
        read += len(first)
        yield first
        while True:
            line = encode(f"{ZERO} {A} refs/heads/y")
            read += len(line)
            yield line

    with pytest.raises(InvalidInput, match="larger than"):
        await read_push_request(endless(), max_head_bytes=10_000, max_commands=10**6)
    assert read < 10_000 + 200


async def test_prepend() -> None:
    assert await collect(prepend(b"ab", chunks_of(b"cdef", 2))) == b"abcdef"
    assert [c async for c in prepend(b"", chunks_of(b"cd", 1))] == [b"c", b"d"]


# ---------------------------------------------------------------- gzip


async def test_gunzip_in_small_chunks() -> None:
    data = os.urandom(100_000) + b"z" * 500_000
    out = [c async for c in gunzip(chunks_of(gzip.compress(data), 999), max_bytes=10**7)]
    assert b"".join(out) == data
    assert max(len(c) for c in out) <= 256 * 1024


async def test_gunzip_concatenated_members() -> None:
    body = gzip.compress(b"hello ") + gzip.compress(b"world")
    assert await collect(gunzip(chunks_of(body, 5), max_bytes=100)) == b"hello world"


async def test_gunzip_refuses_bombs_corrupt_and_truncated_data() -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    with pytest.raises(InvalidInput, match="larger than 1000000 bytes"):
        await collect(gunzip(chunks_of(bomb, 1000), max_bytes=1_000_000))
    with pytest.raises(InvalidInput, match="not valid gzip"):
        await collect(gunzip(chunks_of(b"this is not gzip at all", 4), max_bytes=100))
    with pytest.raises(InvalidInput, match="truncated"):
        await collect(gunzip(chunks_of(gzip.compress(b"x" * 1000)[:-8], 4), max_bytes=10_000))


# ---------------------------------------------------------------- report-status


def test_report_status_encoding() -> None:
    data = report_status("ok", [("refs/heads/a", None), ("refs/heads/b", "no\nway")])
    assert decode_all(data) == [
        b"unpack ok\n",
        b"ok refs/heads/a\n",
        b"ng refs/heads/b no way\n",
        Special.FLUSH,
    ]


UPDATES = [RefUpdate(A, B, "refs/heads/a"), RefUpdate(ZERO, A, "refs/heads/b")]


def feed_bytewise(reader: ReportStatusReader, data: bytes) -> None:
    for byte in data:
        reader.feed(bytes([byte]))


def test_reader_without_sideband() -> None:
    reader = ReportStatusReader(sideband=False)
    feed_bytewise(reader, report_status("ok", [("refs/heads/a", None), ("refs/heads/b", None)]))
    assert reader.landed(UPDATES)
    assert reader.summary(UPDATES) == "pushed refs/heads/a, refs/heads/b"


def test_reader_with_sideband_progress_and_a_refusal() -> None:
    report = report_status("ok", [("refs/heads/a", None), ("refs/heads/b", "hook declined")])
    report += encode("option refname refs/heads/a")  # report-status-v2 noise is ignored
    data = (
        encode_sideband(2, b"Resolving deltas: 100% (3/3)\r")
        + encode_sideband(1, report[:7])
        + encode_sideband(2, b"pre-receive: no thanks\n")
        + encode_sideband(1, report[7:])
        + FLUSH
    )
    reader = ReportStatusReader(sideband=True)
    feed_bytewise(reader, data)
    assert reader.unpack == "ok"
    assert reader.refs == {"refs/heads/a": None, "refs/heads/b": "hook declined"}
    assert not reader.landed(UPDATES)
    assert reader.summary(UPDATES) == (
        "push failed\nrefs/heads/b: hook declined\nremote: pre-receive: no thanks"
    )
    assert reader.remote_lines == ["Resolving deltas: 100% (3/3)", "pre-receive: no thanks"]


def test_reader_failures() -> None:
    unpack_failed = ReportStatusReader(sideband=False)
    unpack_failed.feed(report_status("index-pack abnormal exit", [("refs/heads/a", "n/a")]))
    assert not unpack_failed.landed(UPDATES[:1])
    assert "unpack failed: index-pack abnormal exit" in unpack_failed.summary(UPDATES[:1])

    fatal = ReportStatusReader(sideband=True)
    fatal.feed(encode_sideband(3, b"disk full\n"))
    assert fatal.fatal == "disk full" and not fatal.landed(UPDATES)
    assert fatal.summary(UPDATES).splitlines() == [
        "push failed",
        "upstream error: disk full",
        "the upstream sent no status report",
    ]

    missing = ReportStatusReader(sideband=False)
    missing.feed(report_status("ok", [("refs/heads/a", None)]))
    assert not missing.landed(UPDATES)
    assert "refs/heads/b: not reported" in missing.summary(UPDATES)

    garbage = ReportStatusReader(sideband=False)
    garbage.feed(b"<html>oops</html>")
    assert garbage.fatal is not None and not garbage.landed(UPDATES)


def test_reader_on_real_receive_pack_output(tmp_path: Path) -> None:
    """What git itself answers, with side-band, is read right."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    bare = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True, env=env)
    empty_tree = (
        subprocess.run(
            ["git", "hash-object", "-t", "tree", "-w", "--stdin"],
            input=b"",
            cwd=bare,
            env=env,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    commit = (
        subprocess.run(
            ["git", "commit-tree", empty_tree, "-m", "x"],
            cwd=bare,
            env={
                **env,
                "GIT_AUTHOR_NAME": "a",
                "GIT_AUTHOR_EMAIL": "a@x",
                "GIT_COMMITTER_NAME": "a",
            }
            | {"GIT_COMMITTER_EMAIL": "a@x"},
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    update = RefUpdate(ZERO, commit, "refs/heads/new")

    def receive(pack: bytes) -> ReportStatusReader:
        body = push_body(
            [(ZERO, commit, "refs/heads/new")], "report-status side-band-64k", pack=pack
        )
        out = subprocess.run(
            ["git", "receive-pack", "--stateless-rpc", str(bare)],
            input=body,
            env=env,
            capture_output=True,
            check=True,
        ).stdout
        reader = ReportStatusReader(sideband=True)
        feed_bytewise(reader, out)
        return reader

    no_pack = receive(b"")
    assert not no_pack.landed([update])
    assert no_pack.summary([update]).splitlines() == [
        "push failed",
        "unpack failed: eof before pack header was fully read",
        "refs/heads/new: unpacker error",
    ]
    # The objects are already there, so an empty pack will do.
    empty_pack = subprocess.run(
        ["git", "pack-objects", "--stdout"], input=b"", env=env, capture_output=True, check=True
    ).stdout
    assert receive(empty_pack).landed([update])
