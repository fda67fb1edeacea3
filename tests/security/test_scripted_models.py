"""A member naming files as ``scripted:`` models learns nothing: not a byte of any file, not
whether a path exists. Every refused name gets the very same response, whole, through session
creation, prompts over REST and prompts over the WebSocket."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from openinspect.settings import ModelProviderSettings
from openinspect.store.tables import sessions
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.security.conftest import Live, live_settings, recv_json, running

SECRET = "TOP-SECRET-c0ffee"
VALID = {"turns": [{"text": "scripted hello"}]}


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    """The scripts directory, with neighbours outside it that must stay out of reach."""
    root = tmp_path / "scripts"
    (root / "sub").mkdir(parents=True)
    (root / "ok.json").write_text(json.dumps(VALID))
    (root / "sub" / "nested.json").write_text(json.dumps(VALID))
    # A file inside that is not a script, whose keys a validation message could quote.
    (root / "bad.json").write_text(json.dumps({SECRET: 1, "turns": [{SECRET: SECRET}]}))
    (root / "notjson.json").write_text(f"{SECRET} is not json")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text(json.dumps({"turns": [{"text": SECRET}]}))
    (outside / "secret.txt").write_text(SECRET)
    os.symlink(outside / "secret.json", root / "link.json")
    os.symlink(outside, root / "dirlink")
    os.symlink("/etc/passwd", root / "passwd.json")
    return root


def refused_names(live: Live, tmp_path: Path) -> list[str]:
    home = live.plane.settings.home_dir
    outside = tmp_path / "outside"
    return [
        "missing.json",
        "/etc/passwd",
        "/etc/no-such-file",
        "/etc",
        "../outside/secret.json",
        "sub/../../outside/secret.json",
        str(outside / "secret.json"),
        str(outside / "secret.txt"),
        str(outside / "nope.json"),
        "link.json",
        "dirlink/secret.json",
        "passwd.json",
        str(home / "openinspect.db"),
        str(home / "secret.key"),
        str(home / "admin.token"),
        str(home),
        "sub",
        "demo-no-such-script",
        "demo-tour/../../outside/secret.json",
        "x" * 280,  # over our name limit, under the schema's
        "~/.bashrc",
        "%2e%2e/outside/secret.json",
    ]


async def _sessions(live: Live) -> int:
    async with live.plane.store.engine.connect() as conn:
        return int(
            (await conn.execute(sa.select(sa.func.count()).select_from(sessions))).scalar_one()
        )


def _whole(response: Any) -> tuple[int, Any]:
    return response.status_code, response.json()


async def test_refused_names_all_get_the_same_answer(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path, scripts: Path
) -> None:
    settings = live_settings(
        tmp_path,
        llm,
        models=ModelProviderSettings(
            openai_compatible_base_url=llm.openai_base_url, scripted_dir=scripts
        ),
    )
    async with running(settings, origin) as live:
        _, ada = await live.member("ada")
        before = await _sessions(live)
        answers = {}
        for name in refused_names(live, tmp_path):
            made = await live.call(
                ada, "POST", "/api/sessions", json={"repo": "calc", "model": f"scripted:{name}"}
            )
            answers[name] = _whole(made)
            assert SECRET not in made.text and "root:" not in made.text
        baseline = answers["missing.json"]
        assert baseline[0] == 422 and baseline[1]["error"]["code"] == "unknown_model"
        different = {n: a for n, a in answers.items() if a != baseline}
        assert not different, different
        assert await _sessions(live) == before  # nothing was created

        # The same through a prompt (REST and WebSocket) on an existing session.
        session = await live.session(ada)
        token = await live.ws_token(ada, session["id"])
        async with live.socket(session["id"], token) as ws:
            for name in refused_names(live, tmp_path):
                posted = await live.call(
                    ada,
                    "POST",
                    f"/api/sessions/{session['id']}/prompts",
                    json={"content": "hi", "model": f"scripted:{name}"},
                )
                assert _whole(posted) == baseline, name
                await ws.send(
                    json.dumps({"type": "prompt", "content": "hi", "model": f"scripted:{name}"})
                )
                error = await recv_json(ws)
                assert error["type"] == "error", error
                assert {k: error[k] for k in ("code", "message", "hint")} == baseline[1]["error"]

        # Files inside the directory work; one that is no script says so, and nothing else.
        for good in ("ok.json", "sub/nested.json", str(scripts / "ok.json")):
            made = await live.call(
                ada, "POST", "/api/sessions", json={"repo": "calc", "model": f"scripted:{good}"}
            )
            assert made.status_code == 201, (good, made.text)
        bad = [
            _whole(
                await live.call(
                    ada, "POST", "/api/sessions", json={"repo": "calc", "model": f"scripted:{n}"}
                )
            )
            for n in ("bad.json", "notjson.json")
        ]
        assert bad[0] == bad[1]
        assert bad[0][0] == 422 and "not a valid script" in bad[0][1]["error"]["message"]
        assert SECRET not in json.dumps(bad)


async def test_without_a_scripts_dir_only_the_shipped_demos_work(
    live: Live, tmp_path: Path, scripts: Path
) -> None:
    _, ada = await live.member("ada")
    answers = set()
    for name in [*refused_names(live, tmp_path), str(scripts / "ok.json"), "ok.json"]:
        made = await live.call(
            ada, "POST", "/api/sessions", json={"repo": "calc", "model": f"scripted:{name}"}
        )
        answers.add(json.dumps(_whole(made)))
        assert SECRET not in made.text
    assert len(answers) == 1
    listed = (await live.call(ada, "GET", "/api/models")).json()["models"]
    demos = [m["id"] for m in listed if m["id"].startswith("scripted:demo-")]
    assert "scripted:demo-fix-add" in demos and "scripted:demo-tour" in demos
    for demo in demos:
        made = await live.call(ada, "POST", "/api/sessions", json={"repo": "calc", "model": demo})
        assert made.status_code == 201, made.text
