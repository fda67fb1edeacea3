"""The in-sandbox git forwarder, boot's wiring of ``origin``, and git through a real sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from openinspect.runtime.address import BridgeAddress, unix_url
from openinspect.runtime.binding import PROXY_CONFIG, Binding
from openinspect.runtime.boot import Boot, BootPlan
from openinspect.runtime.bridge import Outbox
from openinspect.runtime.gitforward import MAX_HEAD_BYTES, GitForwarder, _Refused, rewrite_head
from openinspect.runtime.protocol import BRIDGE_PATH
from openinspect.sandboxes.base import SandboxProvider, SandboxSpec, SessionBinding
from openinspect.sandboxes.bridge import BridgeHub
from openinspect.sandboxes.bwrap import BwrapProvider, probe_bwrap
from openinspect.sandboxes.process import ProcessProvider
from openinspect.scm.gitproxy import git_proxy_routes
from openinspect.scm.upstream import LocalUpstream
from openinspect.settings import Settings
from tests.runtime.helpers import boot_plan, git_env
from tests.scm.helpers import (
    OWNER,
    REPO,
    SESSION,
    SESSION_BRANCH,
    TOKEN,
    FakeAuthority,
    Git,
    commit,
    make_upstream,
    serve,
)

IN_CI = os.environ.get("CI", "").lower() == "true"
REMOTE_PATH = f"/git/{SESSION}/{OWNER}/{REPO}.git"


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # A short directory: a Unix socket path must fit in 107 bytes, pytest's tmp_path may not.
    path = Path(tempfile.mkdtemp(prefix="oi-gf-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- the request head


def head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_rewrite_head_swaps_the_credentials() -> None:
    out = rewrite_head(
        head(
            "POST /git/s/o/r.git/git-receive-pack HTTP/1.1",
            "Host: 127.0.0.1:4444",
            "Authorization: Bearer planted",
            "proxy-authorization: Basic eDp5",
            "Connection: keep-alive",
            "Keep-Alive: timeout=5",
            "Upgrade: websocket",
            "Transfer-Encoding: chunked",
            "Git-Protocol: version=2",
        ),
        "tok",
    )
    assert out == head(
        "POST /git/s/o/r.git/git-receive-pack HTTP/1.1",
        "Host: 127.0.0.1:4444",
        "Transfer-Encoding: chunked",
        "Git-Protocol: version=2",
        "Authorization: Bearer tok",
        "Connection: close",
    )


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        ("GET /sandbox/bridge HTTP/1.1", 403),
        ("GET / HTTP/1.1", 403),
        ("GET /gitx/s/o/r.git/info/refs HTTP/1.1", 403),
        ("GET /git/../sandbox/bridge HTTP/1.1", 403),
        ("GET /git/%2e%2e/sandbox/bridge HTTP/1.1", 403),
        ("GET /git/s/./o HTTP/1.1", 403),
        ("GET /git/s/o%00 HTTP/1.1", 403),
        ("GET http://evil/git/s/o/r.git HTTP/1.1", 403),
        ("GET /git/s/o/r.git/info/refs HTTP/2.0", 400),
        ("GET /git/s/o/r.git/info/refs", 400),
    ],
)
def test_rewrite_head_refuses(request_line: str, status: int) -> None:
    with pytest.raises(_Refused) as refused:
        rewrite_head(head(request_line, "Host: x"), "tok")
    assert refused.value.status == status


def test_rewrite_head_refuses_malformed_headers() -> None:
    for bad in ("NoColon", " Folded: yes", "Spaced : yes"):
        with pytest.raises(_Refused, match="malformed"):
            rewrite_head(head("GET /git/s/o/r.git/info/refs HTTP/1.1", bad), "tok")


# ---------------------------------------------------------------- the forwarder


def echo_app() -> Starlette:
    """Answers with what arrived: the headers and a digest of the body."""

    async def echo(request: Request) -> Response:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        return JSONResponse(
            {
                "path": request.url.path,
                "headers": [[k, v] for k, v in request.headers.items()],
                "size": size,
                "sha256": digest.hexdigest(),
            }
        )

    return Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])


@contextlib.asynccontextmanager
async def forwarding(socket_path: Path) -> AsyncIterator[GitForwarder]:
    forwarder = GitForwarder(BridgeAddress.parse(unix_url(str(socket_path))), TOKEN)
    await forwarder.start()
    try:
        yield forwarder
    finally:
        await forwarder.close()


async def raw_request(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


async def test_forwarder_passes_requests_with_the_sandbox_token(socket_dir: Path) -> None:
    socket_path = socket_dir / "bridge.sock"
    payload = os.urandom(5 * 1024 * 1024)

    async def chunked() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 100_000):
            yield payload[i : i + 100_000]

    async with (
        serve(echo_app(), uds=socket_path),
        forwarding(socket_path) as forwarder,
        httpx.AsyncClient() as client,
    ):
        response = await client.post(
            forwarder.url("/git/s/o/r.git/git-receive-pack"),
            content=chunked(),  # chunked transfer encoding, passed through untouched
            headers={
                "Authorization": "Bearer planted-by-the-agent",
                "Proxy-Authorization": "Basic eDp5",
                "Git-Protocol": "version=2",
            },
        )
    assert response.status_code == 200
    seen = response.json()
    headers = seen["headers"]
    assert ["authorization", f"Bearer {TOKEN}"] in headers
    assert [k for k, _ in headers].count("authorization") == 1
    assert not any(k == "proxy-authorization" for k, _ in headers)
    assert ["connection", "close"] in headers
    assert ["git-protocol", "version=2"] in headers
    assert ["transfer-encoding", "chunked"] in headers
    assert seen["path"] == "/git/s/o/r.git/git-receive-pack"
    assert (seen["size"], seen["sha256"]) == (len(payload), hashlib.sha256(payload).hexdigest())


async def test_forwarder_refuses_other_paths_and_huge_heads(socket_dir: Path) -> None:
    socket_path = socket_dir / "bridge.sock"
    async with serve(echo_app(), uds=socket_path), forwarding(socket_path) as forwarder:
        outside = await raw_request(
            forwarder.port, head("GET /sandbox/bridge HTTP/1.1", "Host: x", "Upgrade: websocket")
        )
        dotted = await raw_request(
            forwarder.port, head("GET /git/%2E%2E/sandbox/bridge HTTP/1.1", "Host: x")
        )
        huge = await raw_request(
            forwarder.port,
            head("GET /git/s/o/r.git/info/refs HTTP/1.1", "X-Big: " + "a" * MAX_HEAD_BYTES),
        )
        fine = await raw_request(forwarder.port, head("GET /git/x HTTP/1.1", "Host: x"))
    assert outside.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert outside.endswith(
        b"openinspect: only the git proxy under /git/ is reachable, not /sandbox/bridge\n"
    )
    assert dotted.startswith(b"HTTP/1.1 403 ")
    assert huge.startswith(b"HTTP/1.1 431 ")
    assert fine.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_forwarder_without_a_control_plane(socket_dir: Path) -> None:
    async with forwarding(socket_dir / "absent.sock") as forwarder:
        answer = await raw_request(forwarder.port, head("GET /git/x HTTP/1.1", "Host: x"))
    assert answer.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert b"openinspect: the control plane is not reachable" in answer


async def test_git_needs_no_credentials_behind_the_forwarder(
    tmp_path: Path, socket_dir: Path
) -> None:
    git = Git(tmp_path / "home")  # no token anywhere in git's config or environment
    bare = await make_upstream(git, tmp_path / "upstreams")
    authority = FakeAuthority(LocalUpstream(bare))
    socket_path = socket_dir / "bridge.sock"
    app = Starlette(routes=git_proxy_routes(authority))
    async with serve(app, uds=socket_path), forwarding(socket_path) as forwarder:
        work = tmp_path / "work"
        await git.run("clone", "--quiet", forwarder.url(REMOTE_PATH), str(work), cwd=tmp_path)
        await git.run("checkout", "--quiet", "-b", SESSION_BRANCH, cwd=work)
        sha = await commit(git, work, "f.txt")
        await git.run("push", "--quiet", "origin", "HEAD", cwd=work)
        refused = await git.run("push", "origin", "HEAD:main", cwd=work, check=False)
    assert await git.out("rev-parse", SESSION_BRANCH, cwd=bare) == sha
    assert refused.code != 0
    assert "(main is the base branch; push to openinspect/ses1 instead)" in refused.stderr
    assert set(authority.credentials) == {TOKEN}
    assert TOKEN not in (work / ".git" / "config").read_text()


# ---------------------------------------------------------------- boot and config


def binding(plan: BootPlan, env: dict[str, str], socket_path: Path) -> Binding:
    address = BridgeAddress.parse(unix_url(str(socket_path)))
    return Binding(plan.repo_dir, env, bridge=address, token=TOKEN)


async def test_bind_points_origin_at_the_proxy_each_time_a_box_is_bound(
    tmp_path: Path, socket_dir: Path
) -> None:
    git = Git(tmp_path / "home")
    origin = await make_upstream(git, tmp_path / "upstreams")
    (tmp_path / "ws").mkdir()
    env = git_env(tmp_path)
    plan = boot_plan(tmp_path, origin)
    assert await Boot(plan, Outbox(), env).run()
    repo = plan.repo_dir
    assert await git.out("remote", "get-url", "origin", cwd=repo) == str(origin)  # unbound

    first = binding(plan, env, socket_dir / "bridge.sock")
    params = {"work_branch": SESSION_BRANCH, "git_remote_path": REMOTE_PATH}
    try:
        assert await first.bind(params) == {
            "branch": SESSION_BRANCH,
            "tracking": False,
            "proxied": True,
        }
        first_url = await git.out("remote", "get-url", "origin", cwd=repo)
        assert first_url.startswith("http://127.0.0.1:") and first_url.endswith(REMOTE_PATH)
        for key, value in PROXY_CONFIG:
            assert await git.out("config", "--local", "--get", key, cwd=repo) == value
        assert await git.out("rev-parse", "--abbrev-ref", "HEAD", cwd=repo) == SESSION_BRANCH
    finally:
        await first.close()
    # A restarted box reuses the checkout; its forwarder has another port, and origin follows.
    assert await Boot(plan, Outbox(), env).run()
    second = binding(plan, env, socket_dir / "bridge.sock")
    try:
        await second.bind(params)
        second_url = await git.out("remote", "get-url", "origin", cwd=repo)
    finally:
        await second.close()
    assert second_url != first_url and second_url.endswith(REMOTE_PATH)


async def test_without_a_proxy_origin_is_left_as_cloned(tmp_path: Path, socket_dir: Path) -> None:
    git = Git(tmp_path / "home")
    origin = await make_upstream(git, tmp_path / "upstreams")
    (tmp_path / "ws").mkdir()
    env = git_env(tmp_path)
    plan = boot_plan(tmp_path, origin)
    assert await Boot(plan, Outbox(), env).run()
    bound = binding(plan, env, socket_dir / "bridge.sock")
    result = await bound.bind({"work_branch": SESSION_BRANCH})
    assert result["proxied"] is False
    assert await git.out("remote", "get-url", "origin", cwd=plan.repo_dir) == str(origin)


def test_the_runtime_env_names_no_session(tmp_path: Path) -> None:
    spec = SandboxSpec(
        sandbox_id="sbx",
        workspace_dir=tmp_path,
        clone_source="/o",
        clone_source_is_path=True,
        base_branch="main",
        token="t",
        bridge_url=unix_url(str(tmp_path / "s")),
        carry_branches=(SESSION_BRANCH,),
    )
    env = spec.runtime_env(bridge_url="unix:///b", workspace="/w", clone_source="/o")
    assert not {"OPENINSPECT_WORK_BRANCH", "OPENINSPECT_GIT_REMOTE_PATH"} & set(env)
    assert SESSION not in "".join(env.values()) and SESSION_BRANCH not in "".join(env.values())


# ---------------------------------------------------------------- a real sandbox


@dataclass
class ControlPlane:
    hub: BridgeHub
    authority: FakeAuthority
    socket_path: Path
    upstream: Path
    git: Git


@pytest.fixture
async def control_plane(tmp_path: Path, socket_dir: Path) -> AsyncIterator[ControlPlane]:
    """The bridge and the git proxy on one Unix socket, as ``create_bridge_app`` will serve."""
    git = Git(tmp_path / "home")
    bare = await make_upstream(git, tmp_path / "upstreams")
    hub = BridgeHub(heartbeat_timeout_s=30)
    authority = FakeAuthority(LocalUpstream(bare))

    async def bridge(websocket: WebSocket) -> None:
        await hub.handle(websocket, websocket.headers)

    app = Starlette(routes=[WebSocketRoute(BRIDGE_PATH, bridge), *git_proxy_routes(authority)])
    socket_path = socket_dir / "bridge.sock"
    async with serve(app, uds=socket_path, ws="websockets-sansio"):
        try:
            yield ControlPlane(hub, authority, socket_path, bare, git)
        finally:
            await hub.close()


def bwrap_or_skip(settings: Settings) -> BwrapProvider:
    reason = probe_bwrap()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"bubblewrap is required under CI=true: {reason}")
        pytest.skip(f"bubblewrap cannot create namespaces here: {reason}")
    return BwrapProvider.from_settings(settings)


@pytest.mark.parametrize(
    "provider_name", ["process", pytest.param("bwrap", marks=pytest.mark.bwrap)]
)
async def test_git_push_from_inside_a_sandbox(
    provider_name: str, control_plane: ControlPlane, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "oihome")
    provider: SandboxProvider = (
        ProcessProvider.from_settings(settings)
        if provider_name == "process"
        else bwrap_or_skip(settings)
    )
    sandbox_id = f"sbx-{uuid.uuid4().hex[:10]}"
    conn = control_plane.hub.register(sandbox_id, TOKEN)
    spec = SandboxSpec(
        sandbox_id=sandbox_id,
        workspace_dir=settings.workspaces_dir / sandbox_id,
        clone_source=str(control_plane.upstream),
        clone_source_is_path=True,
        base_branch="main",
        token=TOKEN,
        bridge_url=unix_url(str(control_plane.socket_path)),
        setup_timeout_s=30,
        start_timeout_s=30,
        heartbeat_s=1,
        max_processes=1024,
    )
    handle = await provider.create(spec)
    try:
        # Made ahead of any session (as a pool would), booted, left waiting, bound later.
        await conn.wait_ready(60)
        unbound = await conn.exec(
            "git remote get-url origin; git branch --show-current", timeout_s=30
        )
        assert unbound.stdout.splitlines()[1:] == ["main"]
        assert REMOTE_PATH not in unbound.stdout
        await asyncio.sleep(1.5)  # heartbeats keep it alive meanwhile (heartbeat_s=1)
        bound = await conn.bind(SessionBinding(SESSION, SESSION_BRANCH, REMOTE_PATH))
        assert bound == {"branch": SESSION_BRANCH, "tracking": False, "proxied": True}
        committed = await conn.exec(
            "echo hello > hello.txt && git add hello.txt"
            " && git -c user.name=Ada -c user.email=ada@example.com commit -qm hello"
            " && git rev-parse HEAD",
            timeout_s=60,
        )
        assert committed.exit_code == 0, committed.stderr
        pushed = await conn.exec("git push", timeout_s=60)
        assert pushed.exit_code == 0, pushed.stderr
        base = await conn.exec("git push origin HEAD:main", timeout_s=60)
        tag = await conn.exec("git tag v9 && git push origin v9", timeout_s=60)
        looked = await conn.exec(
            "git remote get-url origin; git config --get credential.helper; echo; env;"
            " cat .git/config; ps -eo args",
            timeout_s=30,
        )
    finally:
        await provider.destroy(handle)
        control_plane.hub.unregister(sandbox_id)

    sha = committed.stdout.strip()
    upstream_sha = await control_plane.git.out(
        "rev-parse", SESSION_BRANCH, cwd=control_plane.upstream
    )
    assert upstream_sha == sha
    assert base.exit_code != 0
    assert "remote: openinspect: push refused; nothing was pushed:" in base.stderr
    assert "(main is the base branch; push to openinspect/ses1 instead)" in base.stderr
    assert tag.exit_code != 0
    assert "(tag pushes are not allowed from a session)" in tag.stderr
    assert looked.stdout.startswith("http://127.0.0.1:")
    assert REMOTE_PATH in looked.stdout
    assert TOKEN not in looked.stdout
    assert [p.ok for p in control_plane.authority.pushes] == [True, False, False]
    assert set(control_plane.authority.credentials) == {TOKEN}
