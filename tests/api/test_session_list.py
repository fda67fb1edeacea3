"""``GET /api/sessions`` in-process: how each session ended, its registered repo name, its diff
stat and its pull request, next to the sessions themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from openinspect.api.app import create_app
from openinspect.controlplane import ControlPlane, open_control_plane
from openinspect.domain.ids import new_id
from openinspect.domain.models import Author
from openinspect.settings import SandboxSettings, Settings
from openinspect.testing.repos import git_output, make_sample_repo
from tests.store.records import prompt_record

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass
class Api:
    client: httpx.AsyncClient
    plane: ControlPlane


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(home=tmp_path / "home", sandbox=SandboxSettings(provider="process"))
    async with open_control_plane(settings) as plane:
        app = create_app(settings, plane)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {plane.bootstrap.token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=headers
        ) as client:
            yield Api(client, plane)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return make_sample_repo(root)


async def _finished_prompt(api: Api, session_id: str, status: str, message: str | None) -> None:
    me = (await api.client.get("/api/me")).json()
    prompts = api.plane.store.prompts
    prompt = prompt_record(
        session_id, Author(id=me["id"], name=me["name"], email=me.get("email") or ""), "do it"
    )
    await prompts.create(prompt, fingerprint=new_id("fp"))
    code = "model_error" if message else None
    await prompts.set_status(prompt.id, status, error_code=code, error_message=message)  # type: ignore[arg-type]


async def test_the_list_says_how_sessions_ended_with_repo_name_diff_stat_and_pr(
    api: Api, origin: Path, tmp_path: Path
) -> None:
    repo = await api.client.post("/api/repos", json={"name": "calc-lib", "url": str(origin)})
    assert repo.status_code == 201, repo.text
    pushed = (await api.client.post("/api/sessions", json={"repo": "calc-lib"})).json()["session"]
    failed = (await api.client.post("/api/sessions", json={"repo": str(origin)})).json()["session"]
    work = tmp_path / "work"
    git_output("clone", "-q", str(origin), str(work), cwd=tmp_path)
    (work / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    git_output("-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qam", "fix", cwd=work)
    git_output("push", "-q", "origin", f"HEAD:refs/heads/{pushed['branch']}", cwd=work)
    await _finished_prompt(api, pushed["id"], "success", None)
    await _finished_prompt(
        api, failed["id"], "error", "The model server refused the request\nTraceback: …"
    )
    await api.plane.store.pulls.save(
        session_id=pushed["id"],
        repo="o/calc",
        number=12,
        url="https://github.com/o/calc/pull/12",
        branch=pushed["branch"],
        base="main",
        title="Fix add",
        state="merged",
        draft=False,
        opened_as="user",
        author_login="ada",
    )

    body = (await api.client.get("/api/sessions")).json()

    assert body["last_prompts"][pushed["id"]] == {
        "status": "success",
        "error_code": None,
        "error_message": None,
    }
    assert body["last_prompts"][failed["id"]] == {
        "status": "error",
        "error_code": "model_error",
        "error_message": "The model server refused the request",
    }
    assert pushed["repo_id"] and body["repo_names"] == {pushed["repo_id"]: "calc-lib"}
    assert body["diff_stats"] == {pushed["id"]: {"files": 1, "additions": 1, "deletions": 2}}
    assert body["pulls"] == {
        pushed["id"]: {
            "number": 12,
            "url": "https://github.com/o/calc/pull/12",
            "state": "merged",
            "draft": False,
        }
    }


async def test_a_session_whose_origin_is_gone_is_listed_without_a_stat(
    api: Api, origin: Path
) -> None:
    session = (await api.client.post("/api/sessions", json={"repo": str(origin)})).json()
    git_output("branch", "-m", "main", "trunk", cwd=origin)  # the base disappears
    for _ in range(2):  # and the failure is remembered, not retried on every poll
        listed = await api.client.get("/api/sessions")
        assert listed.status_code == 200
        assert [s["id"] for s in listed.json()["sessions"]] == [session["session"]["id"]]
        assert listed.json()["diff_stats"] == {}


async def test_the_pull_request_list_says_whether_a_pr_can_be_opened(
    api: Api, origin: Path
) -> None:
    session = (await api.client.post("/api/sessions", json={"repo": str(origin)})).json()
    listed = await api.client.get(f"/api/sessions/{session['session']['id']}/pull-requests")
    assert listed.status_code == 200
    body = listed.json()
    assert body["pull_requests"] == []
    assert body["can_open"] is False
    assert "GitHub" in body["cannot_open_reason"]
