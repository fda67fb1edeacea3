"""``openinspect doctor`` asks each configured model provider and the server for an answer, names
what does not answer with the setting to check, and exits non-zero when one fails. A scripted
LLM server stands for a reachable provider and a closed port for an unreachable one."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess

from .helpers import cli


def closed_port() -> int:
    with socket.socket() as sock:  # nothing listens on it once closed
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def doctor(home: Path, **env: str) -> tuple[int, dict[str, dict[str, object]]]:
    done = cli("doctor", "--json", env={"OPENINSPECT_HOME": str(home), **env})
    found = [json.loads(line) for line in done.stdout.splitlines()]
    return done.returncode, {c["name"]: c for c in found}


def test_an_unreachable_provider_and_server_fail_the_doctor(tmp_path: Path) -> None:
    provider = f"http://127.0.0.1:{closed_port()}/v1"
    server = f"http://127.0.0.1:{closed_port()}"
    status, checks = doctor(
        tmp_path,
        OPENINSPECT_MODELS__OPENAI_COMPATIBLE_BASE_URL=provider,
        OPENINSPECT_URL=server,
    )
    assert status == 1
    compat = checks["provider: openai-compatible"]
    assert compat["ok"] is False and provider in str(compat["detail"])
    assert "OPENINSPECT_MODELS__OPENAI_COMPATIBLE_BASE_URL" in str(compat["fix"])
    assert checks["server"]["ok"] is False and server in str(checks["server"]["detail"])
    assert "openinspect serve" in str(checks["server"]["fix"])
    # Only configured providers are asked: no key here, so no request to a public API.
    assert "provider: anthropic" not in checks and "provider: openai" not in checks


def test_a_reachable_provider_and_server_pass(
    tmp_path: Path, llm: ScriptedLLMServer, server: ServerProcess
) -> None:
    status, checks = doctor(
        tmp_path,
        OPENINSPECT_MODELS__OPENAI_COMPATIBLE_BASE_URL=llm.openai_base_url,
        OPENINSPECT_URL=server.url,
    )
    assert checks["provider: openai-compatible"]["ok"] is True, checks
    assert checks["server"]["ok"] is True, checks
    assert server.url in str(checks["server"]["detail"])
    failing = [c for c in checks.values() if not c["ok"]]
    # The exit status follows the checks that fail (this host may lack bubblewrap, say).
    assert (status == 0) == all(
        c["name"] == "models" or str(c["name"]).startswith(("limit", "box host")) for c in failing
    ), failing
