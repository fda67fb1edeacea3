"""The box's egress forwarder: where it dials, what commands are told, and that it is off
unless the provider turns it on."""

from __future__ import annotations

from openinspect.runtime.address import BridgeAddress
from openinspect.runtime.egressforward import EgressForwarder
from openinspect.runtime.protocol import EGRESS_PATH
from openinspect.runtime.supervisor import RuntimeConfig, command_environment

ENV = {
    "OPENINSPECT_BRIDGE_URL": "unix:///run/openinspect/bridge.sock",
    "OPENINSPECT_SANDBOX_ID": "sbx_1",
    "OPENINSPECT_SANDBOX_TOKEN": "secret-token",
    "OPENINSPECT_BOOT_MODE": "fresh",
    "OPENINSPECT_WORKSPACE": "/workspace",
    "OPENINSPECT_CLONE_SOURCE": "/workspace/x.bundle",
    "OPENINSPECT_BASE_BRANCH": "main",
}


def test_the_egress_endpoint_is_next_to_the_bridge() -> None:
    def uri(url: str) -> str:
        return BridgeAddress.parse(url).ws_uri_for(EGRESS_PATH)

    assert uri("unix:///run/openinspect/bridge.sock") == "ws://localhost/sandbox/egress"
    assert uri("wss://cp.example.com/sandbox/bridge") == "wss://cp.example.com/sandbox/egress"
    assert uri("wss://cp.example.com:8443/oi/sandbox/bridge") == (
        "wss://cp.example.com:8443/oi/sandbox/egress"
    )
    assert uri("ws://127.0.0.1:9000/other") == "ws://127.0.0.1:9000/sandbox/egress"


async def test_commands_are_told_the_proxy_and_keep_loopback_direct() -> None:
    forwarder = EgressForwarder(BridgeAddress.parse(ENV["OPENINSPECT_BRIDGE_URL"]), "t")
    port = await forwarder.start()
    try:
        env = forwarder.environment()
    finally:
        await forwarder.close()
    url = f"http://127.0.0.1:{port}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        assert env[name] == url
    assert env["npm_config_proxy"] == env["npm_config_https_proxy"] == url
    assert env["NO_PROXY"] == env["no_proxy"] == "127.0.0.1,localhost,::1"
    assert "t" not in env.values()  # the token stays in the runtime


def test_egress_is_off_unless_the_provider_turns_it_on() -> None:
    assert RuntimeConfig.from_env(ENV).egress is False
    assert RuntimeConfig.from_env({**ENV, "OPENINSPECT_EGRESS": "0"}).egress is False
    assert RuntimeConfig.from_env({**ENV, "OPENINSPECT_EGRESS": "1"}).egress is True
    assert "OPENINSPECT_EGRESS" not in command_environment({**ENV, "OPENINSPECT_EGRESS": "1"})
