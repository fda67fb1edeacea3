"""Start-up of the server: importing the app loads no model SDK (they take seconds; the server
loads them once it listens) and no githubkit (~300 ms; loaded only where GitHub is configured),
nor the JSONPath and regex engines of automation conditions (loaded when a condition is first
checked), and the warm-up loads only the clients of the providers the server can use. Each check
runs in a fresh interpreter, where ``sys.modules`` shows what an import did."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SDKS = ("anthropic", "openai", "google", "pydantic_ai")
"""pydantic-ai and the providers' SDKs (``pydantic_ai.models.anthropic`` … under it)."""


def loaded_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules a fresh interpreter has once it ran ``code``."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OPENINSPECT_") and k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
    }
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


def sdks(modules: set[str]) -> list[str]:
    return sorted(m for m in modules for s in SDKS if m == s or m.startswith(f"{s}."))


def test_importing_the_server_loads_no_model_sdk() -> None:
    modules = loaded_after(
        "import openinspect.api.app, openinspect.api.server, openinspect.cli.serve"
    )
    assert {"openinspect.api.app", "openinspect.sessions.actor", "fastapi"} <= modules
    assert sdks(modules) == []
    assert "githubkit" not in modules
    # Automation conditions' JSONPath and regex engines load with the first condition checked.
    assert not {"jsonpath", "regex"} & modules


OPEN_PEOPLE = (
    "import asyncio\n"
    "from openinspect.people.service import People\n"
    "from openinspect.settings import Settings\n"
    "from openinspect.store import Store\n"
    "async def main():\n"
    "    s = Settings()\n"
    "    store = await Store.open(s.resolved_database_url)\n"
    "    people = People.open(s, store, bytes(32))\n"
    "    await people.aclose()\n"
    "    await store.close()\n"
    "asyncio.run(main())\n"
)


@pytest.mark.parametrize("configured", [False, True])
def test_githubkit_is_loaded_only_where_github_is_configured(
    configured: bool, tmp_path: object
) -> None:
    env = {"OPENINSPECT_HOME": str(tmp_path)}
    if configured:
        env |= {"OPENINSPECT_GITHUB__CLIENT_ID": "Iv1.x", "OPENINSPECT_GITHUB__CLIENT_SECRET": "s"}
    modules = loaded_after(OPEN_PEOPLE, env)
    assert "openinspect.people.service" in modules
    assert ("githubkit" in modules) is configured
    assert ("openinspect.scm.github" in modules) is configured


def test_creating_the_app_and_its_registry_loads_no_model_sdk(tmp_path: object) -> None:
    code = (
        "from openinspect.settings import Settings\n"
        "from openinspect.api.app import create_app\n"
        "from openinspect.agent.models import ModelRegistry\n"
        "s = Settings()\n"
        "create_app(s)\n"
        "r = ModelRegistry(s)\n"
        "r.validate(r.default_model(), None)\n"
        "r.catalog()\n"
    )
    env = {"OPENINSPECT_HOME": str(tmp_path), "OPENINSPECT_MODELS__ANTHROPIC_API_KEY": "k"}
    assert sdks(loaded_after(code, env)) == []


PRELOAD = (
    "from openinspect.settings import Settings\n"
    "from openinspect.agent.models import ModelRegistry\n"
    "ModelRegistry(Settings()).preload()\n"
)


@pytest.mark.parametrize(
    ("env", "loaded", "not_loaded"),
    [
        # No provider: the demo scripts speak the OpenAI protocol.
        ({}, "pydantic_ai.models.openai", "anthropic"),
        (
            {"OPENINSPECT_MODELS__ANTHROPIC_API_KEY": "k"},
            "pydantic_ai.models.anthropic",
            "openai",
        ),
        (
            {
                "OPENINSPECT_MODELS__OPENAI_COMPATIBLE_BASE_URL": "http://127.0.0.1:9/v1",
                "OPENINSPECT_AGENT__DEFAULT_MODEL": "openai-compatible:m",
            },
            "pydantic_ai.models.openai",
            "anthropic",
        ),
    ],
)
def test_the_warm_up_loads_only_the_clients_of_usable_providers(
    env: dict[str, str], loaded: str, not_loaded: str, tmp_path: object
) -> None:
    modules = loaded_after(PRELOAD, {"OPENINSPECT_HOME": str(tmp_path), **env})
    assert {loaded, "pydantic_ai", "openinspect.agent.runner"} <= modules
    assert sdks({m for m in modules if m.split(".")[0] == not_loaded}) == []
    assert not_loaded not in modules
