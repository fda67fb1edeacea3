"""``GET /api/sessions/{id}/diff`` in-process: the wire shape, and errors in the one envelope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from openinspect.api.app import create_app
from openinspect.controlplane import open_control_plane
from openinspect.settings import SandboxSettings, Settings
from openinspect.testing.repos import git_output, make_sample_repo

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(home=tmp_path / "home", sandbox=SandboxSettings(provider="process"))
    async with open_control_plane(settings) as plane:
        app = create_app(settings, plane)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {plane.bootstrap.token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=headers
        ) as client:
            yield client


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return make_sample_repo(root)


async def test_the_diff_of_a_pushed_branch_and_of_an_unpushed_one(
    api: httpx.AsyncClient, origin: Path, tmp_path: Path
) -> None:
    pushed = (await api.post("/api/sessions", json={"repo": str(origin)})).json()["session"]
    fresh = (await api.post("/api/sessions", json={"repo": str(origin)})).json()["session"]
    work = tmp_path / "work"
    git_output("clone", "-q", str(origin), str(work), cwd=tmp_path)
    (work / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    git_output("-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qam", "fix", cwd=work)
    git_output("push", "-q", "origin", f"HEAD:refs/heads/{pushed['branch']}", cwd=work)
    head = git_output("rev-parse", "HEAD", cwd=work).strip()
    base = git_output("rev-parse", "main", cwd=origin).strip()

    response = await api.get(f"/api/sessions/{pushed['id']}/diff")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "base",
        "branch",
        "base_sha",
        "head_sha",
        "files",
        "truncated",
        "prompts_finished",
    }
    assert (body["base"], body["branch"]) == ("main", pushed["branch"])
    assert (body["base_sha"], body["head_sha"], body["truncated"]) == (base, head, False)
    [file] = body["files"]
    assert {k: v for k, v in file.items() if k != "patch"} == {
        "path": "calc.py",
        "old_path": None,
        "status": "modified",
        "additions": 1,
        "deletions": 2,
        "binary": False,
        "truncated": False,
    }
    assert file["patch"].startswith("@@") and "+    return a + b" in file["patch"]

    unpushed = (await api.get(f"/api/sessions/{fresh['id']}/diff")).json()
    assert unpushed == {
        "base": "main",
        "branch": fresh["branch"],
        "base_sha": None,
        "head_sha": None,
        "files": [],
        "truncated": False,
        "prompts_finished": 0,
    }


async def test_errors_use_the_envelope(api: httpx.AsyncClient, origin: Path) -> None:
    missing = await api.get("/api/sessions/ses_missing/diff")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "session_not_found"
    session = (await api.post("/api/sessions", json={"repo": str(origin)})).json()["session"]
    git_output("branch", "-m", "main", "trunk", cwd=origin)  # the base disappears
    gone = await api.get(f"/api/sessions/{session['id']}/diff")
    assert gone.status_code == 502
    assert gone.json()["error"]["code"] == "git_failed"
    assert "'main' is not on" in gone.json()["error"]["message"]
    anonymous = await api.get(f"/api/sessions/{session['id']}/diff", headers={"Authorization": ""})
    assert anonymous.status_code == 401


def test_the_route_is_in_the_openapi_schema(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path / "home"))
    route = app.openapi()["paths"]["/api/sessions/{session_id}/diff"]["get"]
    assert "SessionDiffOut" in str(route["responses"]["200"])
    assert "502" in route["responses"]
