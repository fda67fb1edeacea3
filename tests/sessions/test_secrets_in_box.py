"""Repo secrets reach a session's box as environment variables (the global ones and the
repo's, the repo's winning) and nothing else: a real box process (``process``: no containment
claim here) runs every command a careless agent runs, and no event (stored or live), model
request, stored conversation, box log or server log holds a value or a part of one.
``tests/security/test_secret_doors.py`` runs the same in a bubblewrap box behind a real
server."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.controlplane import ControlPlane
from openinspect.secrets.rules import GLOBAL, SecretScope
from openinspect.settings import AgentSettings, ModelProviderSettings, SandboxSettings, Settings
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.conftest import MODEL
from tests.secrets.box import (
    BOX_LOG_LINE,
    DEPLOY_KEY,
    GLOBAL_TOKEN,
    HASHES,
    REPO_TOKEN,
    leaks,
    make_repo,
    script,
    sha256,
)
from tests.sessions.bridged import bridged_plane

TIMEOUT_S = 120.0


@pytest.fixture
async def plane(tmp_path: Path, llm: ScriptedLLMServer) -> AsyncIterator[ControlPlane]:
    settings = Settings(
        home=tmp_path / "home",
        sandbox=SandboxSettings(provider="process"),
        agent=AgentSettings(default_model=MODEL),
        models=ModelProviderSettings(openai_compatible_base_url=llm.openai_base_url),
    )
    async with bridged_plane(settings, git_proxy=True) as opened:
        yield opened


async def _collect(plane: ControlPlane, session_id: str, seen: list[dict[str, Any]]) -> None:
    async with plane.events.subscribe(session_id) as messages:
        seen.append({"type": "subscribed"})
        async for raw in messages:
            message = json.loads(raw)
            if message["kind"] == "event":
                seen.append(message["event"])
                if message["event"]["type"] == "prompt-finished":
                    return


async def test_a_box_gets_its_secrets_and_nothing_shows_them(
    plane: ControlPlane,
    llm: ScriptedLLMServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    store, admin = plane.store, plane.bootstrap.user
    assert admin is not None
    repo = await store.repos.create(
        name="vault", url=str(make_repo(tmp_path)), default_branch="main", created_by=admin.id
    )
    await store.secrets.put(GLOBAL, {"API_TOKEN": GLOBAL_TOKEN, "DEPLOY_KEY": DEPLOY_KEY}, by=None)
    await store.secrets.put(SecretScope(repo.id), {"API_TOKEN": REPO_TOKEN}, by=None)
    llm.reset(script())

    session = await plane.manager.create(admin, repo="vault")
    seen: list[dict[str, Any]] = []
    watcher = asyncio.create_task(_collect(plane, session.id, seen))
    while not seen:
        await asyncio.sleep(0.01)
    await (await plane.manager.actor(session.id)).submit(admin, "show me the environment")
    await asyncio.wait_for(watcher, TIMEOUT_S)

    stored = await store.events.after(session.id, 0, 10_000)
    [finished] = [e for e in stored if e.type == "prompt-finished"]
    assert finished.status == "success", finished  # type: ignore[union-attr]
    results = [e for e in stored if e.type == "tool-result"]
    outputs = [e.output for e in results]  # type: ignore[union-attr]
    # The box had the values: the repo's API_TOKEN over the global one, the key whole.
    hashes = outputs[HASHES]
    assert sha256(REPO_TOKEN) in hashes and sha256(DEPLOY_KEY) in hashes, hashes
    # And everything that printed them shows the names instead.
    assert "API_TOKEN=[secret:API_TOKEN]" in outputs[0]
    assert outputs[1] == "[secret:API_TOKEN]\n[exit code 0]"
    assert outputs[2].count("[secret:DEPLOY_KEY]") == 2
    assert outputs[3].count("[secret:API_TOKEN]") == 2
    assert "[secret:API_TOKEN]" in outputs[4] and "[secret:DEPLOY_KEY]" in outputs[4]
    assert "[secret:API_TOKEN]" in outputs[HASHES + 1]  # read leak.txt
    [refused] = [e for e in stored if e.type == "warning" and e.code == "push_refused"]  # type: ignore[union-attr]
    assert "refs/heads/[secret:API_TOKEN]" in refused.message  # type: ignore[union-attr]
    lines = [e.line for e in stored if e.type == "sandbox-log"]  # type: ignore[union-attr]
    assert "setup sees API_TOKEN=[secret:API_TOKEN]" in lines
    assert any("API_TOKEN, DEPLOY_KEY" in line for line in lines)  # names, said once

    live = json.dumps([e for e in seen if e["type"] == "tool-output-delta"])
    assert "[secret:API_TOKEN]" in live
    everything = {
        "stored events": json.dumps([e.model_dump(mode="json") for e in stored]),
        "live events": json.dumps(seen),
        "model requests": json.dumps([r.body for r in llm.requests]),
        "conversation": json.dumps(list(await store.sessions.load_conversation(session.id))),
        "box log": "".join(
            p.read_text(errors="replace") for p in plane.settings.workspaces_dir.glob("*.log")
        ),
        "server log": caplog.text,
    }
    assert {where: leaks(text) for where, text in everything.items() if leaks(text)} == {}
    assert BOX_LOG_LINE in everything["box log"]
