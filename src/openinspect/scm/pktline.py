"""git's pkt-line wire format, side-band framing, and the parts of a push the proxy reads.

A pkt-line is four hex digits giving the length of the line including those four digits, then
the payload; ``0000`` is a flush, ``0001`` a delimiter and ``0002`` a response end
(protocol v2). A push (``POST …/git-receive-pack``) starts with optional ``shallow`` lines, then
``<old> <new> <ref>\\0<capabilities>``, more commands and a flush, then (when the client
negotiated ``push-options``) options and a flush, then the pack. :func:`read_push_request`
reads exactly up to the pack and hands back what it read beyond, so the pack can be streamed on
untouched. :class:`ReportStatusReader` follows receive-pack's answer as it streams past.

Nothing here buffers a pack: the decoders hold at most one packet.
"""

from __future__ import annotations

import enum
import re
import zlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from openinspect.errors import InvalidInput

from .push_rules import RefUpdate

MAX_PKT_BYTES = 65520
"""The longest pkt-line, its four length digits included."""
MAX_PKT_PAYLOAD = MAX_PKT_BYTES - 4
SIDEBAND_64K_PAYLOAD = MAX_PKT_PAYLOAD - 1
SIDEBAND_PAYLOAD = 1000 - 4 - 1
"""Data per packet with plain ``side-band`` (1000-byte packets), the band byte excluded."""
MAX_PUSH_HEAD_BYTES = 1024 * 1024
MAX_PUSH_COMMANDS = 1000
GUNZIP_STEP_BYTES = 256 * 1024
MAX_REPORTED_REFS = 10_000
MAX_REMOTE_LINES = 20
MAX_SUMMARY_LINES = 5

FLUSH = b"0000"
DELIM = b"0001"
RESPONSE_END = b"0002"

_OID = re.compile(rb"[0-9a-f]{40}|[0-9a-f]{64}")


class Special(enum.Enum):
    """The packets without payload."""

    FLUSH = 0
    DELIM = 1
    RESPONSE_END = 2


Packet = bytes | Special


def encode(payload: bytes | str) -> bytes:
    """One pkt-line carrying ``payload`` (at most :data:`MAX_PKT_PAYLOAD` bytes)."""
    data = payload.encode() if isinstance(payload, str) else payload
    if len(data) > MAX_PKT_PAYLOAD:
        raise ValueError(f"a pkt-line holds at most {MAX_PKT_PAYLOAD} bytes, got {len(data)}")
    return b"%04x" % (len(data) + 4) + data


def encode_sideband(band: int, data: bytes, *, max_payload: int = SIDEBAND_64K_PAYLOAD) -> bytes:
    """``data`` on side-band ``band`` (1 data, 2 progress, 3 fatal error), split into packets."""
    return b"".join(
        encode(bytes([band]) + data[i : i + max_payload]) for i in range(0, len(data), max_payload)
    )


def _length(header: bytes) -> int:
    try:
        length = int(header, 16)
    except ValueError:
        length = -1
    if not re.fullmatch(rb"[0-9a-fA-F]{4}", header) or length == 3 or length > MAX_PKT_BYTES:
        raise InvalidInput(
            f"Expected a pkt-line length (four hex digits, at most {MAX_PKT_BYTES:04x}), "
            f"got {header!r}"
        )
    return length


def _special(length: int) -> Special | None:
    return Special(length) if length < 4 else None


class PktDecoder:
    """Incremental pkt-line decoder: feed bytes as they come, get the complete packets."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Packet]:
        """The packets ``data`` completes; a partial packet stays buffered."""
        self._buffer += data
        packets: list[Packet] = []
        pos = 0
        while len(self._buffer) - pos >= 4:
            length = _length(bytes(self._buffer[pos : pos + 4]))
            special = _special(length)
            if special is not None:
                packets.append(special)
                pos += 4
                continue
            if len(self._buffer) - pos < length:
                break
            packets.append(bytes(self._buffer[pos + 4 : pos + length]))
            pos += length
        del self._buffer[:pos]
        return packets

    @property
    def pending(self) -> int:
        """Bytes of an incomplete packet waiting for more input."""
        return len(self._buffer)


def decode_all(data: bytes) -> list[Packet]:
    """Every packet of ``data``; raises ``InvalidInput`` if it ends inside a packet."""
    decoder = PktDecoder()
    packets = decoder.feed(data)
    if decoder.pending:
        raise InvalidInput(f"pkt-line data ends inside a packet ({decoder.pending} bytes left)")
    return packets


@dataclass(frozen=True)
class PushRequest:
    """The start of a receive-pack request, up to (not including) the pack.

    ``head`` holds the exact bytes parsed (to be forwarded as they are) and ``rest`` whatever was
    read beyond them: the first bytes of the pack.
    """

    commands: list[RefUpdate]
    capabilities: list[str]
    push_options: list[str]
    shallow: list[str]
    head: bytes
    rest: bytes

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    @property
    def sideband_payload(self) -> int | None:
        """Data bytes per side-band packet the client accepts, or None without side-band."""
        if self.has("side-band-64k"):
            return SIDEBAND_64K_PAYLOAD
        if self.has("side-band"):
            return SIDEBAND_PAYLOAD
        return None

    @property
    def wants_report(self) -> bool:
        return self.has("report-status") or self.has("report-status-v2")


class _HeadReader:
    """Reads pkt-lines off a chunk stream, keeping every byte read and bounding the total."""

    def __init__(self, chunks: AsyncIterator[bytes], max_bytes: int) -> None:
        self._chunks = chunks
        self._max = max_bytes
        self.buffer = bytearray()
        self.pos = 0

    async def _need(self, n: int) -> None:
        if self.pos + n > self._max:
            raise InvalidInput(
                f"The push's command list is larger than {self._max} bytes",
                hint="push fewer refs at once",
            )
        while len(self.buffer) - self.pos < n:
            chunk = await anext(self._chunks, None)
            if chunk is None:
                raise InvalidInput("The push request ended inside its command list")
            self.buffer += chunk

    async def packet(self) -> Packet:
        await self._need(4)
        length = _length(bytes(self.buffer[self.pos : self.pos + 4]))
        special = _special(length)
        if special is not None:
            self.pos += 4
            return special
        await self._need(length)
        payload = bytes(self.buffer[self.pos + 4 : self.pos + length])
        self.pos += length
        return payload

    async def line(self) -> bytes | None:
        """The next payload, None at a flush; other special packets are refused."""
        packet = await self.packet()
        if packet is Special.FLUSH:
            return None
        if isinstance(packet, Special):
            raise InvalidInput(f"Unexpected {packet.name.lower()} packet in a push request")
        return packet


def _command(payload: bytes) -> RefUpdate:
    parts = payload.rstrip(b"\n").split(b" ")
    if len(parts) != 3 or not all(_OID.fullmatch(p) for p in parts[:2]) or not parts[2]:
        raise InvalidInput(f"Expected a push command '<old> <new> <ref>', got {payload[:200]!r}")
    try:
        ref = parts[2].decode()
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"A pushed ref name is not UTF-8: {parts[2][:200]!r}") from exc
    return RefUpdate(old=parts[0].decode(), new=parts[1].decode(), ref=ref)


async def read_push_request(
    chunks: AsyncIterator[bytes],
    *,
    max_head_bytes: int = MAX_PUSH_HEAD_BYTES,
    max_commands: int = MAX_PUSH_COMMANDS,
) -> PushRequest:
    """Read a receive-pack request's shallow lines, commands and push options off ``chunks``.

    Stops at the pack: the caller forwards ``head + rest`` and then the rest of ``chunks``.
    Raises ``InvalidInput`` for a malformed request, a signed push (push certificates are not
    supported), more than ``max_commands`` commands or a head over ``max_head_bytes``. A request
    that is a bare flush (git's auth probe before a large push) has no commands.
    """
    reader = _HeadReader(chunks, max_head_bytes)
    shallow: list[str] = []
    line = await reader.line()
    while line is not None and line.startswith(b"shallow "):
        shallow.append(line[len(b"shallow ") :].strip().decode(errors="replace"))
        line = await reader.line()
    commands: list[RefUpdate] = []
    capabilities: list[str] = []
    options: list[str] = []
    if line is not None:
        if line.startswith(b"push-cert"):
            raise InvalidInput(
                "Signed pushes are not supported by the openinspect git proxy",
                hint="push without --signed",
            )
        first, _, caps = line.partition(b"\0")
        capabilities = caps.decode(errors="replace").split()
        commands.append(_command(first))
        while (line := await reader.line()) is not None:
            if len(commands) >= max_commands:
                raise InvalidInput(
                    f"A push may update at most {max_commands} refs",
                    hint="push fewer refs at once",
                )
            commands.append(_command(line))
        if "push-options" in capabilities:
            while (line := await reader.line()) is not None:
                options.append(line.rstrip(b"\n").decode(errors="replace"))
    return PushRequest(
        commands=commands,
        capabilities=capabilities,
        push_options=options,
        shallow=shallow,
        head=bytes(reader.buffer[: reader.pos]),
        rest=bytes(reader.buffer[reader.pos :]),
    )


async def prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``first`` (if any), then every chunk of ``rest``."""
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def gunzip(chunks: AsyncIterator[bytes], *, max_bytes: int) -> AsyncIterator[bytes]:
    """Decompress a gzip stream chunk by chunk (``Content-Encoding: gzip`` request bodies).

    At most :data:`GUNZIP_STEP_BYTES` come out per step, and more than ``max_bytes`` in total is
    refused, so a small bomb cannot fill memory. Raises ``InvalidInput`` for corrupt or
    truncated data.
    """
    decomp = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    total = 0
    try:
        async for chunk in chunks:
            data = chunk
            while data:
                if decomp.eof:  # another gzip member follows (concatenated members are valid)
                    decomp = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                out = decomp.decompress(data, GUNZIP_STEP_BYTES)
                data = decomp.unused_data if decomp.eof else decomp.unconsumed_tail
                total += len(out)
                if total > max_bytes:
                    raise InvalidInput(
                        f"The decompressed request body is larger than {max_bytes} bytes"
                    )
                if out:
                    yield out
        tail = decomp.flush()
    except zlib.error as exc:
        raise InvalidInput(f"The request body is not valid gzip: {exc}") from exc
    if total + len(tail) > max_bytes:
        raise InvalidInput(f"The decompressed request body is larger than {max_bytes} bytes")
    if tail:
        yield tail
    if not decomp.eof:
        raise InvalidInput("The gzip request body is truncated")


def report_status(unpack: str, results: Iterable[tuple[str, str | None]]) -> bytes:
    """receive-pack's report: ``unpack <status>``, then ``ok <ref>`` or ``ng <ref> <reason>``
    per ref (``reason`` None means ok), then a flush."""
    lines = [encode(f"unpack {unpack}\n")]
    for ref, reason in results:
        if reason is None:
            lines.append(encode(f"ok {ref}\n"))
        else:
            flat = " ".join(reason.split())  # one line: git reads the reason up to LF
            lines.append(encode(f"ng {ref} {flat}\n"))
    return b"".join(lines) + FLUSH


class ReportStatusReader:
    """Follows receive-pack's answer as it streams by, keeping only the verdicts.

    ``sideband`` says whether the client negotiated side-band (then the report travels on band 1,
    progress on band 2 and a fatal error on band 3). After the stream ends, :attr:`unpack` is
    the unpack status (``ok`` or git's error), :attr:`refs` maps each reported ref to None (ok)
    or its refusal reason, :attr:`fatal` holds a band-3 error, and :attr:`remote_lines` the last
    lines of band 2 (progress, and what the upstream's hooks printed).
    """

    def __init__(self, *, sideband: bool) -> None:
        self._sideband = sideband
        self._outer = PktDecoder()
        self._inner = PktDecoder()
        self._done = False
        self.unpack: str | None = None
        self.refs: dict[str, str | None] = {}
        self.fatal: str | None = None
        self.remote_lines: list[str] = []

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the response; never raises on garbage (it is only forwarded)."""
        if self._done:
            return
        try:
            for packet in self._outer.feed(data):
                self._packet(packet)
        except InvalidInput:
            self._done = True
            self.fatal = self.fatal or "the upstream's answer is not valid pkt-line data"

    def _packet(self, packet: Packet) -> None:
        if isinstance(packet, Special):
            if packet is Special.FLUSH:
                self._done = True
            return
        if not self._sideband:
            self._report_line(packet)
            return
        band, payload = packet[:1], packet[1:]
        if band == b"\x01":
            for inner in self._inner.feed(payload):
                if isinstance(inner, bytes):
                    self._report_line(inner)
        elif band == b"\x02":
            text = payload.decode(errors="replace")
            for line in text.replace("\r", "\n").splitlines():
                if line.strip():
                    self.remote_lines = [*self.remote_lines[-(MAX_REMOTE_LINES - 1) :], line]
        elif band == b"\x03":
            self.fatal = payload.decode(errors="replace").strip() or "fatal error"

    def _report_line(self, payload: bytes) -> None:
        text = payload.decode(errors="replace").rstrip("\n")
        if text.startswith("unpack "):
            self.unpack = text[len("unpack ") :]
        elif text.startswith(("ok ", "ng ")) and len(self.refs) < MAX_REPORTED_REFS:
            verdict, _, rest = text.partition(" ")
            ref, _, reason = rest.partition(" ")
            self.refs[ref] = None if verdict == "ok" else (reason or "refused")

    def landed(self, updates: Iterable[RefUpdate]) -> bool:
        """Whether the upstream unpacked and accepted every one of ``updates``."""
        return (
            self.fatal is None
            and self.unpack == "ok"
            and all(u.ref in self.refs and self.refs[u.ref] is None for u in updates)
        )

    def summary(self, updates: Iterable[RefUpdate]) -> str:
        """A one-paragraph account of what the upstream said, for the push event."""
        updates = list(updates)
        if self.landed(updates):
            return "pushed " + ", ".join(u.ref for u in updates)
        problems: list[str] = []
        if self.fatal is not None:
            problems.append(f"upstream error: {self.fatal}")
        if self.unpack is None:
            problems.append("the upstream sent no status report")
        elif self.unpack != "ok":
            problems.append(f"unpack failed: {self.unpack}")
        for update in updates:
            if update.ref not in self.refs:
                if self.unpack is not None:
                    problems.append(f"{update.ref}: not reported")
            elif (reason := self.refs[update.ref]) is not None:
                problems.append(f"{update.ref}: {reason}")
        # What the upstream's hooks said (GitHub's rule violations, say); progress lines aside.
        said = [line for line in self.remote_lines if "%" not in line][-MAX_SUMMARY_LINES:]
        problems += [f"remote: {line}" for line in said]
        return "push failed\n" + "\n".join(problems)
