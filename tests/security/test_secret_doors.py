"""Repo secrets are write-only and stay in the box: a real server in this process, a real
bubblewrap box, the scripted model as an agent that prints its environment every way it can.

- The box gets the values (the repo's over the global ones): their hashes are printed there.
- No value, nor a part of one, is in any answer of the API (the session, its events, its diff,
  the session list, the secrets list, every refusal), any WebSocket frame (live output
  included), any model request, the stored conversation, the box's log file or the server log.
- Only admins reach the secrets (members get 403 for every verb, and learn no value).
- A ciphertext copied into another row does not open: the box does not start, and what says
  so names the secret, not its value.
- The size and count limits refuse a change whole.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from openinspect.sandboxes.bwrap import probe_bwrap
from openinspect.secrets.rules import GLOBAL
from openinspect.settings import SandboxSettings
from openinspect.store.tables import secrets
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.conftest import IN_CI
from tests.secrets.box import (
    DEPLOY_KEY,
    GLOBAL_TOKEN,
    HASHES,
    REPO_TOKEN,
    leaks,
    make_repo,
    script,
    sha256,
)
from tests.security.conftest import Live, live_settings, running

pytestmark = [pytest.mark.timeout(300)]
PROMPT_TIMEOUT_S = 180.0
# The deploy key as a .env line: double quotes, \n escapes, an export and a comment.
ENV_TEXT = "# imported\nexport DEPLOY_KEY=" + json.dumps(DEPLOY_KEY) + "  # the key\n"


@pytest.fixture(autouse=True)
def _server_log(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    uvicorn = logging.getLogger("uvicorn")
    uvicorn.addHandler(caplog.handler)
    yield
    uvicorn.removeHandler(caplog.handler)


@pytest.fixture
async def live(tmp_path: Path, llm: ScriptedLLMServer, origin: Path) -> AsyncIterator[Live]:
    reason = probe_bwrap()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"bubblewrap is required under CI=true: {reason}")
        pytest.skip(f"bubblewrap cannot create namespaces here: {reason}")
    settings = live_settings(tmp_path, llm, sandbox=SandboxSettings(provider="bwrap"))
    async with running(settings, origin) as server:
        yield server


async def _vault(live: Live, tmp_path: Path) -> str:
    """The repo ``vault`` (its setup prints the secrets), with the global secrets and its own."""
    admin = live.admin_token
    made = await live.call(
        admin, "POST", "/api/repos", json={"name": "vault", "url": str(make_repo(tmp_path))}
    )
    assert made.status_code == 201, made.text
    answers = [
        await live.call(admin, "PUT", "/api/secrets/API_TOKEN", json={"value": GLOBAL_TOKEN}),
        await live.call(admin, "POST", "/api/secrets/import", json={"text": ENV_TEXT}),
        await live.call(
            admin,
            "PUT",
            "/api/secrets/API_TOKEN",
            params={"repo": "vault"},
            json={"value": REPO_TOKEN},
        ),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert not leaks(answer.text)
    return "vault"


async def _run(live: Live, token: str, session_id: str) -> list[dict[str, Any]]:
    """Send the prompt over the session's socket; every frame until it finished."""
    frames: list[dict[str, Any]] = []
    async with live.socket(session_id, await live.ws_token(token, session_id)) as ws:
        await ws.send(json.dumps({"type": "prompt", "content": "print your environment"}))
        async with asyncio.timeout(PROMPT_TIMEOUT_S):
            while True:
                frame = json.loads(await ws.recv())
                frames.append(frame)
                if frame.get("type") == "event" and frame["event"]["type"] == "prompt-finished":
                    return frames


async def _all_events(live: Live, token: str, session_id: str) -> list[httpx.Response]:
    pages, after = [], 0
    while True:
        page = await live.call(
            token, "GET", f"/api/sessions/{session_id}/events", params={"after_seq": after}
        )
        assert page.status_code == 200, page.text
        pages.append(page)
        events = page.json()["events"]
        if not page.json()["has_more"]:
            return pages
        after = events[-1]["seq"]


async def test_the_agent_printing_its_environment_shows_names_never_values(
    live: Live, llm: ScriptedLLMServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repo = await _vault(live, tmp_path)
    _, ada = await live.member("ada")
    llm.reset(script())
    session = await live.session(ada, repo=repo)
    frames = await _run(live, ada, session["id"])

    pages = await _all_events(live, ada, session["id"])
    events = [e for page in pages for e in page.json()["events"]]
    [finished] = [e for e in events if e["type"] == "prompt-finished"]
    assert finished["status"] == "success", finished
    outputs = [e["output"] for e in events if e["type"] == "tool-result"]
    assert sha256(REPO_TOKEN) in outputs[HASHES] and sha256(DEPLOY_KEY) in outputs[HASHES]
    assert "API_TOKEN=[secret:API_TOKEN]" in outputs[0]  # env
    assert outputs[1].startswith("[secret:API_TOKEN]\n")  # echo $API_TOKEN
    assert "[secret:DEPLOY_KEY]" in outputs[2]
    deltas = [f["event"] for f in frames if f["type"] == "event"]
    assert any(e["type"] == "tool-output-delta" for e in deltas)

    answers = [
        *pages,
        await live.call(ada, "GET", f"/api/sessions/{session['id']}"),
        await live.call(ada, "GET", f"/api/sessions/{session['id']}/diff"),
        await live.call(ada, "GET", "/api/sessions"),
        await live.call(live.admin_token, "GET", "/api/secrets"),
        await live.call(live.admin_token, "GET", "/api/secrets", params={"repo": repo}),
        await live.call(live.admin_token, "GET", f"/api/sessions/{session['id']}/events"),
    ]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    box_logs = list(live.plane.settings.workspaces_dir.glob("*.log"))
    assert box_logs
    box_log = "".join(p.read_text(errors="replace") for p in box_logs)
    conversation = await live.plane.store.sessions.load_conversation(session["id"])
    seen = {
        "API answers": "\n".join(a.text for a in answers),
        "WebSocket frames": json.dumps(frames),
        "model requests": json.dumps([r.body for r in llm.requests]),
        "stored conversation": json.dumps(list(conversation)),
        "box log": box_log,
        "server log": caplog.text,
    }
    assert {where: leaks(text) for where, text in seen.items() if leaks(text)} == {}


async def test_members_are_refused_every_verb_and_learn_no_value(
    live: Live, tmp_path: Path
) -> None:
    repo = await _vault(live, tmp_path)
    _, ada = await live.member("ada")
    for method, path, body in (
        ("GET", "/api/secrets", None),
        ("PUT", "/api/secrets/API_TOKEN", {"value": "ada-wants-this-one"}),
        ("PUT", "/api/secrets/NEW_ONE", {"value": "ada-wants-this-one"}),
        ("POST", "/api/secrets/import", {"text": "API_TOKEN=ada-wants-this-one"}),
        ("DELETE", "/api/secrets/API_TOKEN", None),
    ):
        for params in ({}, {"repo": repo}):
            refused = await live.call(ada, method, path, params=params, json=body)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "forbidden"
            assert not leaks(refused.text) and "API_TOKEN" not in refused.text
    assert await live.plane.store.secrets.values_for(None) == {
        "API_TOKEN": GLOBAL_TOKEN,
        "DEPLOY_KEY": DEPLOY_KEY,
    }
    assert len(await live.plane.store.secrets.listed()) == 3  # nothing added, nothing gone


async def test_refusals_and_limits_quote_no_value(live: Live) -> None:
    admin = live.admin_token
    ok = await live.call(admin, "PUT", "/api/secrets/API_TOKEN", json={"value": GLOBAL_TOKEN})
    assert ok.status_code == 200
    refusals = [
        # A reserved name with a value.
        ("PUT", "/api/secrets/LD_PRELOAD", {"value": GLOBAL_TOKEN}, 422),
        # Too long, in characters (the schema) and in bytes (the rules).
        ("PUT", "/api/secrets/BIG", {"value": REPO_TOKEN * 700}, 422),
        ("PUT", "/api/secrets/BIG", {"value": "é" * 8200 + REPO_TOKEN}, 422),
        # An import with a bad line among good ones: nothing of it is taken.
        ("POST", "/api/secrets/import", {"text": f"A_1={REPO_TOKEN}\noops {REPO_TOKEN}\n"}, 422),
        ("POST", "/api/secrets/import", {"text": f"X={REPO_TOKEN}\n" * 30_000}, 422),
        # Too many for one scope.
        (
            "POST",
            "/api/secrets/import",
            {"text": "".join(f"K_{n}={REPO_TOKEN}\n" for n in range(100))},
            409,
        ),
    ]
    for method, path, body, status in refusals:
        refused = await live.call(admin, method, path, json=body)
        assert refused.status_code == status, (path, refused.text[:300])
        assert not leaks(refused.text), refused.text[:300]
    listed = await live.call(admin, "GET", "/api/secrets")
    assert [s["name"] for s in listed.json()["secrets"]] == ["API_TOKEN"]


async def test_a_ciphertext_moved_to_another_row_does_not_open(
    live: Live, llm: ScriptedLLMServer, tmp_path: Path
) -> None:
    repo = await _vault(live, tmp_path)
    store = live.plane.store
    async with store.engine.begin() as conn:  # the global token's ciphertext into the repo's row
        sealed = (
            await conn.execute(
                sa.select(secrets.c.value).where(
                    secrets.c.scope == GLOBAL.key, secrets.c.name == "API_TOKEN"
                )
            )
        ).scalar_one()
        await conn.execute(
            secrets.update()
            .where(secrets.c.scope != GLOBAL.key, secrets.c.name == "API_TOKEN")
            .values(value=sealed)
        )
    llm.reset({"turns": [{"tool_calls": [{"name": "bash", "args": {"command": "env"}}]}]})
    _, ada = await live.member("ada")
    session = await live.session(ada, repo=repo, prompt="print your environment")
    async with asyncio.timeout(PROMPT_TIMEOUT_S):
        while await store.prompts.unfinished(session["id"]):
            await asyncio.sleep(0.1)
    events = (await _all_events(live, ada, session["id"]))[0].json()["events"]
    [failed] = [e for e in events if e["type"] == "sandbox-status" and e["status"] == "failed"]
    assert "The repo secret API_TOKEN cannot be opened" in failed["message"], failed
    outputs = [e["output"] for e in events if e["type"] == "tool-result"]
    assert not any("API_TOKEN=" in o for o in outputs)  # no box ran the command
    assert not leaks(json.dumps(events))
