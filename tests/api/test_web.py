"""The web app at ``/``: built files, the history-API fallback, caching and security headers,
and a clear 503 when the app is not built. In-process, against a small stand-in build."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from openinspect.api import web
from openinspect.api.app import create_app
from openinspect.controlplane import open_control_plane
from openinspect.settings import SandboxSettings, Settings
from openinspect.testing.browser import web_missing
from tests.conftest import skip_or_fail

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

THEME_SCRIPT = "document.documentElement.dataset.theme = 'dark';"
INDEX = f"""<!doctype html>
<html><head><script>{THEME_SCRIPT}</script>
<script type="module" crossorigin src="/assets/index-AbC123.js"></script></head>
<body><div id="app"></div></body></html>"""


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-AbC123.js").write_text("console.log('app')")
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


@pytest.fixture
async def client(
    tmp_path: Path, dist: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app (API and web) with ``dist`` as the build."""
    monkeypatch.setattr(web, "DIST_DIR", dist)
    settings = Settings(home=tmp_path / "home", sandbox=SandboxSettings(provider="process"))
    async with open_control_plane(settings) as plane:
        app = create_app(settings, plane)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body["error"]) == {"code", "message", "hint"}
    code: str = body["error"]["code"]
    return code


async def test_index_has_no_cache_and_a_strict_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    csp = response.headers["content-security-policy"]
    policy = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    digest = base64.b64encode(hashlib.sha256(THEME_SCRIPT.encode()).digest()).decode()
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert policy["default-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"


@pytest.mark.parametrize(
    "path", ["/sessions/ses_123", "/repos", "/new", "/index.html", "/auth/complete"]
)
async def test_app_routes_fall_back_to_the_index(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.text == INDEX
    assert "content-security-policy" in response.headers


async def test_head_of_a_page(client: httpx.AsyncClient) -> None:
    response = await client.head("/sessions/ses_1")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(INDEX.encode()))


async def test_hashed_assets_are_immutable_and_revalidate(client: httpx.AsyncClient) -> None:
    response = await client.get("/assets/index-AbC123.js")
    assert response.status_code == 200
    assert response.text == "console.log('app')"
    assert "javascript" in response.headers["content-type"]
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"
    again = await client.get(
        "/assets/index-AbC123.js", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304


async def test_other_files_of_the_build_are_served_but_not_cached(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/favicon.svg")
    assert response.status_code == 200
    assert response.text.startswith("<svg")
    assert response.headers["cache-control"] == "no-cache"


async def test_a_missing_asset_is_a_404_not_the_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/assets/index-OLD999.js")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/api/nothing-here",
        "/api",
        "/healthz/nothing-here",
        "/sandbox/nothing-here",
        "/git/nothing-here",
        "/webhooks/nothing-here",
        "/auth/nothing-here",
    ],
)
async def test_api_prefixes_never_get_the_page(client: httpx.AsyncClient, path: str) -> None:
    for method in ("GET", "POST"):
        response = await client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert error_code(response) == "not_found"


async def test_the_api_still_answers(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    assert error_code(await client.get("/api/sessions")) == "unauthenticated"
    assert (await client.get("/api/openapi.json")).status_code == 200


async def test_only_get_and_head(client: httpx.AsyncClient) -> None:
    response = await client.post("/sessions/ses_1")
    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"
    assert response.headers["allow"] == "GET, HEAD"


async def test_no_way_out_of_the_build(client: httpx.AsyncClient) -> None:
    for raw in ("/..%2fsecret.txt", "/assets/..%2f..%2fsecret.txt", "/%2e%2e/secret.txt"):
        response = await client.get(raw)
        assert "outside the build" not in response.text, raw


async def test_a_new_build_is_picked_up_without_a_restart(
    client: httpx.AsyncClient, dist: Path
) -> None:
    assert (await client.get("/")).text == INDEX
    rebuilt = INDEX.replace("AbC123", "XyZ789").replace("'dark'", "'light'")
    (dist / "index.html").write_text(rebuilt)
    response = await client.get("/")
    assert response.text == rebuilt
    digest = base64.b64encode(
        hashlib.sha256(THEME_SCRIPT.replace("'dark'", "'light'").encode()).digest()
    ).decode()
    assert f"'sha256-{digest}'" in response.headers["content-security-policy"]


async def test_without_a_build_pages_say_how_to_build_it(
    client: httpx.AsyncClient, dist: Path
) -> None:
    (dist / "index.html").unlink()
    as_json = await client.get("/sessions/ses_1")
    assert as_json.status_code == 503
    assert error_code(as_json) == "web_not_built"
    assert "make run" in as_json.json()["error"]["hint"]
    as_html = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert as_html.status_code == 503
    assert as_html.headers["content-type"].startswith("text/html")
    assert "web_not_built" in as_html.text and "make run" in as_html.text
    assert "frame-ancestors 'none'" in as_html.headers["content-security-policy"]
    # The API does not depend on the build.
    assert (await client.get("/healthz")).status_code == 200


def test_the_package_serves_its_own_build_directory() -> None:
    assert web.DIST_DIR.parts[-3:] == ("openinspect", "web", "dist")
    assert (web.DIST_DIR.parent.parent / "api" / "web.py").is_file()


def test_the_wheel_ships_the_built_app(tmp_path: Path) -> None:
    """Installing from a wheel needs no Node: the build is inside it (make builds it first)."""
    reason = web_missing()
    if reason is not None:
        skip_or_fail(reason)
    uv = shutil.which("uv")
    if uv is None:
        skip_or_fail("uv is not on PATH")
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [str(uv), "build", "--wheel", "--quiet", "--out-dir", str(tmp_path), str(root)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("openinspect-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "openinspect/web/dist/index.html" in names
    assert any(n.startswith("openinspect/web/dist/assets/") for n in names)
    assert "openinspect/api/web.py" in names
