"""The bridge address as a URL: parsing, and the runtime dialling a bridge over the network
(``ws://`` and ``wss://`` with a real TLS server on loopback), RPC and git forwarding included."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from openinspect.runtime.address import BadBridgeAddress, BridgeAddress, unix_url
from openinspect.runtime.bridge import BridgeClient, Outbox
from openinspect.runtime.executor import Executor
from openinspect.runtime.gitforward import GitForwarder
from openinspect.runtime.protocol import BRIDGE_PATH, MAX_FRAME_BYTES, HelloMessage
from openinspect.runtime.rpc import RpcServer
from openinspect.sandboxes.base import SandboxSpec, SessionBinding
from openinspect.sandboxes.bridge import BridgeHub
from openinspect.sandboxes.process import ProcessProvider
from openinspect.settings import Settings
from openinspect.testing.inloop import serving
from tests.sandboxes.conftest import make_origin

TOKEN = "remote-token"
SANDBOX_ID = "sbx-remote"
CONNECT_TIMEOUT_S = 10.0


def test_parses_the_three_schemes() -> None:
    unix = BridgeAddress.parse("unix:///run/openinspect/bridge%20one.sock")
    assert (unix.scheme, unix.path, unix.ws_uri) == (
        "unix",
        "/run/openinspect/bridge one.sock",
        "ws://localhost/sandbox/bridge",
    )
    assert unix_url("/run/openinspect/bridge one.sock") == unix.url
    remote = BridgeAddress.parse("wss://control.example.com/sandbox/bridge")
    assert (remote.host, remote.port, remote.path, remote.authority) == (
        "control.example.com",
        443,
        BRIDGE_PATH,
        "control.example.com",
    )
    assert remote.ws_uri == "wss://control.example.com/sandbox/bridge"
    local = BridgeAddress.parse("ws://127.0.0.1:8123")
    assert (local.port, local.path, local.authority) == (8123, BRIDGE_PATH, "127.0.0.1:8123")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/sandbox/bridge", "starts with unix://, ws:// or wss://"),
        ("/run/bridge.sock", "starts with unix://"),
        ("unix://relative/bridge.sock", "unix:///absolute/path.sock"),
        ("unix:///run/a%00b.sock", "unix:///absolute/path.sock"),
        ("wss:///sandbox/bridge", "names a host"),
        ("wss://h:99999/sandbox/bridge", "bad port"),
        ("wss://user:pw@h/sandbox/bridge", "no query, fragment or credentials"),
        ("wss://h/sandbox/bridge?x=1", "no query, fragment or credentials"),
        ("wss://h/" + "x" * 3000, "at most 2048 characters"),
    ],
)
def test_refuses_what_it_cannot_dial(url: str, why: str) -> None:
    with pytest.raises(BadBridgeAddress, match=why.replace("?", r"\?")):
        BridgeAddress.parse(url)
    with pytest.raises(BadBridgeAddress, match="must be absolute"):
        unix_url("run/bridge.sock")


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for ``localhost`` and 127.0.0.1 (its own CA)."""
    root = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(root / "cert.pem", root / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass
class RemoteBridge:
    hub: BridgeHub
    port: int
    git_requests: list[dict[str, str]]


@contextlib.asynccontextmanager
async def remote_bridge(certificate: Certificate | None) -> AsyncIterator[RemoteBridge]:
    """The bridge on TCP loopback (TLS when ``certificate``), as a remote box would reach it,
    with a stand-in git proxy route that records what reached it."""
    hub = BridgeHub(heartbeat_timeout_s=30)
    git_requests: list[dict[str, str]] = []

    async def bridge_route(websocket: WebSocket) -> None:
        await hub.handle(websocket, websocket.headers)

    async def git_route(request: Request) -> PlainTextResponse:
        git_requests.append(
            {
                "path": request.url.path,
                "host": request.headers.get("host", ""),
                "authorization": request.headers.get("authorization", ""),
            }
        )
        return PlainTextResponse("proxied\n")

    app = Starlette(
        routes=[WebSocketRoute(BRIDGE_PATH, bridge_route), Route("/git/{rest:path}", git_route)]
    )
    tls = (
        {}
        if certificate is None
        else {
            "ssl_certfile": str(certificate.cert),
            "ssl_keyfile": str(certificate.key),
        }
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        ws="websockets-sansio",
        ws_max_size=MAX_FRAME_BYTES,
        log_config=None,
        log_level="warning",
        lifespan="off",
        **tls,  # type: ignore[arg-type]
    )
    async with serving(config) as server:
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield RemoteBridge(hub, port, git_requests)
        finally:
            await hub.close()


def _hello() -> HelloMessage:
    return {
        "type": "hello",
        "runtime_version": "test",
        "boot_mode": "fresh",
        "sandbox_id": SANDBOX_ID,
        "phase": "ready",
    }


@contextlib.asynccontextmanager
async def dialling(
    address: BridgeAddress, tls: ssl.SSLContext | None, repo: Path
) -> AsyncIterator[BridgeClient]:
    """The runtime's bridge client and RPC server, dialling ``address`` until the end."""
    outbox = Outbox()
    rpc = RpcServer(Executor(repo, {"PATH": "/usr/bin:/bin"}), outbox)
    client = BridgeClient(
        address, SANDBOX_ID, TOKEN, outbox, hello=_hello, on_message=rpc.handle, tls=tls
    )
    task = asyncio.create_task(client.run())
    try:
        yield client
    finally:
        task.cancel()
        await rpc.close()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("secure", [True, False], ids=["wss", "ws"])
async def test_the_runtime_dials_a_remote_bridge(
    secure: bool, certificate: Certificate, tmp_path: Path
) -> None:
    async with remote_bridge(certificate if secure else None) as bridge:
        scheme = "wss" if secure else "ws"
        address = BridgeAddress.parse(f"{scheme}://localhost:{bridge.port}{BRIDGE_PATH}")
        tls = address.tls(str(certificate.cert))
        assert (tls is not None) == secure
        conn = bridge.hub.register(SANDBOX_ID, TOKEN)
        async with dialling(address, tls, tmp_path) as client:
            await asyncio.wait_for(client.connected.wait(), CONNECT_TIMEOUT_S)
            await conn.wait_ready(CONNECT_TIMEOUT_S)  # the hello said "ready"
            result = await conn.exec("echo over the network", timeout_s=10)
            assert (result.exit_code, result.stdout) == (0, "over the network\n")

            forwarder = GitForwarder(address, TOKEN, tls=tls)
            port = await forwarder.start()
            try:
                async with httpx.AsyncClient() as http:
                    answer = await http.get(
                        f"http://127.0.0.1:{port}/git/ses/o/r.git/info/refs",
                        headers={"Authorization": "Basic c3RvbGVu"},
                    )
            finally:
                await forwarder.close()
        assert (answer.status_code, answer.text) == (200, "proxied\n")
        assert bridge.git_requests == [
            {
                "path": "/git/ses/o/r.git/info/refs",
                "host": f"localhost:{bridge.port}",  # the control plane's, not the loopback's
                "authorization": f"Bearer {TOKEN}",  # the box's own credential was dropped
            }
        ]


async def test_a_wss_bridge_whose_certificate_is_not_trusted_is_never_reached(
    certificate: Certificate, tmp_path: Path
) -> None:
    async with remote_bridge(certificate) as bridge:
        address = BridgeAddress.parse(f"wss://localhost:{bridge.port}{BRIDGE_PATH}")
        conn = bridge.hub.register(SANDBOX_ID, TOKEN)
        # The system's CAs do not know the self-signed certificate: no fallback to plain text.
        async with dialling(address, address.tls(None), tmp_path) as client:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.connected.wait(), 1.0)
        assert not conn.connected and conn.hello is None


async def test_a_box_boots_and_binds_over_a_network_bridge(tmp_path: Path) -> None:
    """The whole runtime as its own process (the ``process`` backend) given a ``ws://`` bridge:
    what a remote backend's box does, on loopback."""
    origin = make_origin(tmp_path)
    settings = Settings(home=tmp_path / "home")
    provider = ProcessProvider.from_settings(settings)
    async with remote_bridge(None) as bridge:
        conn = bridge.hub.register(SANDBOX_ID, TOKEN)
        spec = SandboxSpec(
            sandbox_id=SANDBOX_ID,
            workspace_dir=settings.workspaces_dir / SANDBOX_ID,
            clone_source=str(origin.bare),
            clone_source_is_path=True,
            base_branch="main",
            token=TOKEN,
            bridge_url=f"ws://127.0.0.1:{bridge.port}{BRIDGE_PATH}",
            heartbeat_s=1.0,
        )
        handle = await provider.create(spec)
        try:
            await conn.wait_ready(60)
            bound = await conn.bind(SessionBinding("ses-remote", "openinspect/remote"))
            result = await conn.exec("git branch --show-current", timeout_s=30)
        finally:
            await provider.destroy(handle)
    assert bound["branch"] == "openinspect/remote"
    assert result.stdout == "openinspect/remote\n"
