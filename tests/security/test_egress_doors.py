"""The egress proxy's doors: only a live box's token opens a tunnel, a box gets its own repo's
allow-list and nothing else, no address that is not public is reached without an exact entry
(IP literals, numeric host names, DNS that points an allowed name at loopback), heads and
connections are bounded, nothing is added to what the box sends, and a refusal names the host
but no server path."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import secrets
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from websockets.asyncio.client import unix_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from openinspect.api.app import create_bridge_app
from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.domain.ids import new_id
from openinspect.egress.addresses import IPAddress, resolve
from openinspect.egress.proxy import EgressLimits, EgressProxy
from openinspect.runtime.address import BridgeAddress, unix_url
from openinspect.runtime.egressforward import EgressForwarder
from openinspect.runtime.protocol import EGRESS_PATH
from openinspect.sessions.egress_authority import SessionEgressAuthority
from openinspect.settings import SandboxSettings, Settings
from openinspect.testing.inloop import serving
from openinspect.testing.records import session_record
from tests.egress.records import settled

REBOUND = "box.rebind.test"
"""A name under an allowed wildcard whose DNS answers loopback (a rebinding attacker's)."""


@dataclass
class Upstream:
    """A TCP server on loopback that records every request head and answers ``ok``."""

    port: int = 0
    heads: list[bytes] = field(default_factory=list)


@contextlib.asynccontextmanager
async def upstream() -> AsyncIterator[Upstream]:
    seen = Upstream()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            first = await reader.readuntil(b"\r\n\r\n")
            seen.heads.append(first)
            if first.startswith(b"PING"):  # a tunnel's bytes: echo them
                writer.write(b"PONG\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    seen.port = server.sockets[0].getsockname()[1]
    try:
        yield seen
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class Doors:
    plane: ControlPlane
    socket: Path
    upstream: Upstream
    tokens: dict[str, str]  # session name → its box's token
    sandboxes: dict[str, str]  # session name → its sandbox id
    sessions: dict[str, str]  # session name → session id

    async def ask(self, token: str | None, data: bytes, *, half_close: bool = True) -> bytes:
        """Send ``data`` on one tunnel and read everything until the proxy closes it."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        received = b""
        async with unix_connect(
            str(self.socket), uri=f"ws://localhost{EGRESS_PATH}", additional_headers=headers
        ) as ws:
            await ws.send(data)
            if half_close:
                await ws.send(b"")
            with contextlib.suppress(ConnectionClosed):
                async with asyncio.timeout(10):
                    async for message in ws:
                        assert isinstance(message, bytes)
                        received += message
        return received


async def _fake_resolve(host: str, port: int) -> list[IPAddress]:
    if host == REBOUND:
        return [ipaddress.ip_address("127.0.0.1")]
    return await resolve(host, port)


@pytest.fixture
async def doors(tmp_path: Path) -> AsyncIterator[Doors]:
    settings = Settings(home=tmp_path / "home", sandbox=SandboxSettings(provider="process"))
    socket_dir = Path(tempfile.mkdtemp(prefix="oi-egress-"))
    async with upstream() as up, open_control_plane(settings) as plane:
        user = plane.bootstrap.user
        assert user is not None
        tokens, sandboxes, sessions = {}, {}, {}
        for name, allow in (
            ("a", [f"127.0.0.1:{up.port}", f"localhost:{up.port}", "allowed.test"]),
            ("b", []),
        ):
            repo = await plane.store.repos.create(
                name=f"acme/{name}", url=f"/r/{name}", default_branch="main", created_by=user.id
            )
            await plane.store.egress.set_repo_entries(repo.id, allow, updated_by=user.id)
            session = session_record(new_id("ses"), user.id).model_copy(update={"repo_id": repo.id})
            await plane.store.sessions.create(session)
            sandbox_id, token = new_id("sbx"), secrets.token_urlsafe(32)
            plane.hub.register(sandbox_id, token)
            await plane.store.sandboxes.create(
                sandbox_id=sandbox_id,
                session_id=session.id,
                provider="test",
                token_hash=hashlib.sha256(token.encode()).hexdigest(),
            )
            tokens[name], sandboxes[name], sessions[name] = token, sandbox_id, session.id
        authority = SessionEgressAuthority(
            store=plane.store, events=plane.events, hub=plane.hub, allow=["*.rebind.test"]
        )
        proxy = EgressProxy(
            authority,
            EgressLimits(max_head_bytes=4096, max_connections=2, idle_timeout_s=1.0),
            resolver=_fake_resolve,
        )
        config = uvicorn.Config(
            create_bridge_app(plane.hub, None, proxy),
            uds=str(socket_dir / "bridge.sock"),
            log_config=None,
            log_level="warning",
            lifespan="off",
        )
        try:
            async with serving(config):
                yield Doors(plane, socket_dir / "bridge.sock", up, tokens, sandboxes, sessions)
        finally:
            shutil.rmtree(socket_dir, ignore_errors=True)


def _get(host: str, path: str = "/") -> bytes:
    return f"GET http://{host}{path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_a_live_boxs_token_gets_through(doors: Doors) -> None:
    answer = await doors.ask(doors.tokens["a"], _get(f"127.0.0.1:{doors.upstream.port}"))
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"ok")


@pytest.mark.parametrize("token", [None, "", "not-a-token"])
async def test_an_unknown_token_is_refused_at_the_handshake(
    doors: Doors, token: str | None
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await doors.ask(token, _get(f"127.0.0.1:{doors.upstream.port}"))
    assert refused.value.response.status_code == 403
    assert doors.upstream.heads == []


async def test_a_lost_boxs_token_is_refused(doors: Doors) -> None:
    doors.plane.hub.unregister(doors.sandboxes["a"])
    with pytest.raises(InvalidStatus):
        await doors.ask(doors.tokens["a"], _get(f"127.0.0.1:{doors.upstream.port}"))
    assert doors.upstream.heads == []


async def test_another_sessions_box_cannot_use_this_repos_allow_list(doors: Doors) -> None:
    target = f"127.0.0.1:{doors.upstream.port}"
    for request in (_get(target), f"CONNECT {target} HTTP/1.1\r\n\r\n".encode()):
        answer = await doors.ask(doors.tokens["b"], request)
        assert _status(answer) == 403, answer
    assert doors.upstream.heads == []
    records = await doors.plane.store.egress.of_session(doors.sessions["b"])
    assert [(r.allowed, r.code) for r in records] == [(False, "host_not_allowed")] * 2


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",  # the cloud metadata service
        "10.0.0.1",
        "127.0.0.1",  # listed only with the upstream's port
        "[::1]",
        "[::ffff:127.0.0.1]",
        "localhost",  # listed only with the upstream's port
    ],
)
async def test_private_and_metadata_addresses_are_refused(doors: Doors, host: str) -> None:
    answer = await doors.ask(doors.tokens["a"], _get(host, "/latest/meta-data/"))
    assert _status(answer) == 403, answer


@pytest.mark.parametrize("host", ["2130706433", "0x7f.0.0.1", "0177.0.0.1", "127.1"])
async def test_numeric_names_that_resolvers_read_as_addresses_are_not_hosts(
    doors: Doors, host: str
) -> None:
    answer = await doors.ask(doors.tokens["a"], _get(f"{host}:{doors.upstream.port}"))
    assert _status(answer) == 400, answer
    assert doors.upstream.heads == []


async def test_an_allowed_wildcard_name_resolving_to_loopback_is_refused(doors: Doors) -> None:
    """DNS rebinding: *.rebind.test is allowed, but this name answers 127.0.0.1."""
    answer = await doors.ask(doors.tokens["a"], f"CONNECT {REBOUND}:443 HTTP/1.1\r\n\r\n".encode())
    assert _status(answer) == 403
    assert b"private_address" in answer and b"not public" in answer


async def test_an_exact_entry_may_reach_loopback(doors: Doors) -> None:
    """What an internal mirror needs: 'localhost:<port>' is listed, so it is reached."""
    answer = await doors.ask(doors.tokens["a"], _get(f"localhost:{doors.upstream.port}"))
    assert _status(answer) == 200, answer


async def test_connect_to_a_port_other_than_443_is_refused(doors: Doors) -> None:
    answer = await doors.ask(doors.tokens["a"], b"CONNECT allowed.test:22 HTTP/1.1\r\n\r\n")
    assert _status(answer) == 403
    assert b"port_not_allowed" in answer and b'port 22 of host "allowed.test"' in answer


async def test_an_oversize_head_is_refused(doors: Doors) -> None:
    head = _get(f"127.0.0.1:{doors.upstream.port}")[:-2] + b"X-Pad: " + b"a" * 8192 + b"\r\n\r\n"
    answer = await doors.ask(doors.tokens["a"], head)
    assert _status(answer) == 431
    assert doors.upstream.heads == []
    (record,) = await doors.plane.store.egress.of_session(doors.sessions["a"])
    assert (record.code, record.status) == ("head_too_large", 431)


async def test_a_head_without_an_end_is_refused_at_its_limit(doors: Doors) -> None:
    answer = await doors.ask(doors.tokens["a"], b"GET http://x/ HTTP/1.1\r\n" + b"a" * 5000)
    assert _status(answer) == 431


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET / HTTP/1.1",  # origin form: not a proxy request
        b"GET https://allowed.test/ HTTP/1.1",  # https goes through CONNECT
        b"GET http://user:pw@allowed.test/ HTTP/1.1",
        b"TRACE http://allowed.test/ HTTP/1.1",
        b"CONNECT allowed.test HTTP/1.1",
        b"GET http://allowed.test/ HTTP/2",
    ],
)
async def test_malformed_requests_are_refused(doors: Doors, request_line: bytes) -> None:
    answer = await doors.ask(doors.tokens["a"], request_line + b"\r\nHost: x\r\n\r\n")
    assert _status(answer) in (400, 405), answer
    (record,) = await doors.plane.store.egress.of_session(doors.sessions["a"])
    assert (record.allowed, record.host, record.status) == (False, "", _status(answer))
    assert record.method == request_line.split(b" ")[0].decode()


async def test_nothing_is_added_and_the_proxy_headers_are_dropped(doors: Doors) -> None:
    target = f"127.0.0.1:{doors.upstream.port}"
    head = (
        f"GET http://{target}/simple/ HTTP/1.1\r\nHost: elsewhere.test\r\n"
        "Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\n"
        "User-Agent: pip\r\n\r\n"
    ).encode()
    answer = await doors.ask(doors.tokens["a"], head)
    assert _status(answer) == 200
    (sent,) = doors.upstream.heads
    assert sent.startswith(b"GET /simple/ HTTP/1.1\r\n")
    lines = sent.lower().split(b"\r\n")
    assert f"host: {target}".encode() in lines and b"connection: close" in lines
    assert b"user-agent: pip" in lines
    assert not any(line.startswith((b"proxy-", b"authorization", b"x-forwarded")) for line in lines)
    assert doors.tokens["a"].encode() not in sent


async def test_a_tunnel_carries_bytes_both_ways_and_is_recorded(doors: Doors) -> None:
    target = f"localhost:{doors.upstream.port}"
    tunnel = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()
    answer = await doors.ask(doors.tokens["a"], tunnel + b"PING\r\n\r\n")
    assert answer == b"HTTP/1.1 200 Connection Established\r\n\r\nPONG\n"
    (record,) = await settled(doors.plane, doors.sessions["a"])
    assert (record.method, record.host, record.allowed) == ("CONNECT", "localhost", True)
    assert (record.bytes_up, record.bytes_down) == (len(b"PING\r\n\r\n"), len(b"PONG\n"))


async def test_an_idle_tunnel_is_closed(doors: Doors) -> None:
    target = f"localhost:{doors.upstream.port}"
    started = asyncio.get_running_loop().time()
    answer = await doors.ask(
        doors.tokens["a"], f"CONNECT {target} HTTP/1.1\r\n\r\n".encode(), half_close=False
    )
    assert answer.startswith(b"HTTP/1.1 200")
    assert asyncio.get_running_loop().time() - started < 5  # the 1 s idle limit, not forever


async def test_a_box_has_a_bounded_number_of_connections(doors: Doors) -> None:
    target = f"localhost:{doors.upstream.port}"
    headers = {"Authorization": f"Bearer {doors.tokens['a']}"}
    uri = f"ws://localhost{EGRESS_PATH}"
    async with contextlib.AsyncExitStack() as held:
        for _ in range(2):  # the limit: two tunnels held open
            ws = await held.enter_async_context(
                unix_connect(str(doors.socket), uri=uri, additional_headers=headers)
            )
            await ws.send(f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
            assert (await ws.recv()).startswith(b"HTTP/1.1 200")  # type: ignore[union-attr]
        answer = await doors.ask(doors.tokens["a"], _get(target))
        for _ in range(2):  # twice the limit: not even a head is read
            slow = await held.enter_async_context(
                unix_connect(str(doors.socket), uri=uri, additional_headers=headers)
            )
            await slow.send(b"CONNECT")  # a head that never ends
        with pytest.raises(InvalidStatus):
            await doors.ask(doors.tokens["a"], _get(target))
    assert _status(answer) == 429
    assert b"too_many_connections" in answer


async def test_a_refusal_names_the_host_and_the_setting_but_no_server_path(
    doors: Doors, tmp_path: Path
) -> None:
    answer = await doors.ask(doors.tokens["a"], _get("evil.example", "/x"))
    assert _status(answer) == 403
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Forbidden by the egress allow-list: evil.example:80" in head
    text = body.decode()
    assert text.startswith('egress: host "evil.example" is not allowed')
    assert "sandbox.egress.allow" in text
    assert "openinspect repos egress acme/a --allow evil.example" in text
    for secret in (str(tmp_path), str(doors.socket), str(Path.home()), doors.tokens["a"]):
        assert secret not in answer.decode("latin-1")
    events = await doors.plane.store.events.after(doors.sessions["a"], 0, 100)
    warning = [e for e in events if e.type == "warning" and e.code == "egress_refused"]
    assert len(warning) == 1 and "evil.example" in warning[0].message


async def test_the_forwarder_in_the_box_carries_a_refusal_to_the_client(doors: Doors) -> None:
    """Through the runtime's loopback port, as curl and pip reach it."""
    forwarder = EgressForwarder(BridgeAddress.parse(unix_url(str(doors.socket))), doors.tokens["b"])
    port = await forwarder.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_get("evil.example"))
        await writer.drain()
        async with asyncio.timeout(10):
            answer = await reader.read()
        writer.close()
    finally:
        await forwarder.close()
    assert _status(answer) == 403 and b'host "evil.example" is not allowed' in answer


async def test_the_forwarder_with_a_wrong_token_says_so(doors: Doors) -> None:
    forwarder = EgressForwarder(BridgeAddress.parse(unix_url(str(doors.socket))), "forged")
    port = await forwarder.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_get("allowed.test"))
        await writer.drain()
        async with asyncio.timeout(10):
            answer = await reader.read()
        writer.close()
    finally:
        await forwarder.close()
    assert _status(answer) == 502 and b"refused this box's egress (HTTP 403)" in answer
    assert str(doors.socket).encode() not in answer


async def test_a_client_that_half_closes_still_gets_its_answer(doors: Doors) -> None:
    """Some clients shut their sending side once the request is out (``nc -N``)."""
    forwarder = EgressForwarder(BridgeAddress.parse(unix_url(str(doors.socket))), doors.tokens["a"])
    port = await forwarder.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_get(f"127.0.0.1:{doors.upstream.port}"))
        writer.write_eof()
        async with asyncio.timeout(10):
            answer = await reader.read()
        writer.close()
    finally:
        await forwarder.close()
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"ok")


async def test_an_allowed_host_that_does_not_answer_is_a_recorded_502(doors: Doors) -> None:
    """A repo's new entry applies from the next tunnel on (the store is asked every time)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # nothing listens once it is closed
    repo = await doors.plane.store.repos.find("acme/b")
    assert repo is not None
    await doors.plane.store.egress.set_repo_entries(
        repo.id, [f"127.0.0.1:{closed_port}"], updated_by=None
    )
    answer = await doors.ask(doors.tokens["b"], _get(f"127.0.0.1:{closed_port}"))
    assert _status(answer) == 502 and b"cannot connect to 127.0.0.1:" in answer
    (record,) = await settled(doors.plane, doors.sessions["b"])
    assert (record.allowed, record.code, record.status) == (True, "unreachable", 502)
    assert record.duration_ms is not None
