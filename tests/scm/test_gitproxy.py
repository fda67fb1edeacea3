"""The git proxy end to end: the real git CLI over real HTTP, local and HTTP upstreams."""

from __future__ import annotations

import asyncio
import gzip
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from openinspect.scm.gitproxy import GitProxyOptions, git_proxy_routes
from openinspect.scm.pktline import FLUSH, ReportStatusReader, encode
from openinspect.scm.upstream import (
    GitHeaders,
    HttpUpstream,
    LocalUpstream,
    Service,
    Upstream,
    UpstreamReply,
)

from .helpers import (
    OWNER,
    REPO,
    SESSION,
    SESSION_BRANCH,
    TOKEN,
    AsgiTap,
    FakeAuthority,
    Git,
    HttpBackend,
    commit,
    make_upstream,
    serve,
)

BIG_BYTES = 50 * 1024 * 1024
AUTH_HEADER = {"Authorization": f"Bearer {TOKEN}"}


def bearer_env(token: str = TOKEN) -> dict[str, str]:
    """git sends the token on every request, as the sandbox's forwarder does."""
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Bearer {token}",
    }


@dataclass
class SpyUpstream:
    """Counts calls, and measures how much of the push the proxy had taken from the client when
    the upstream got its first bytes (a buffering proxy would have taken all of it)."""

    inner: Upstream
    tap: AsgiTap
    calls: list[str] = field(default_factory=list)
    taken_at_first_chunk: int | None = None
    largest_chunk: int = 0
    headers: list[GitHeaders] = field(default_factory=list)

    async def info_refs(self, service: Service, headers: GitHeaders) -> UpstreamReply:
        self.calls.append(f"info_refs {service}")
        return await self.inner.info_refs(service, headers)

    async def upload_pack(self, body: AsyncIterator[bytes], headers: GitHeaders) -> UpstreamReply:
        self.calls.append("upload_pack")
        self.headers.append(headers)
        return await self.inner.upload_pack(body, headers)

    async def receive_pack(self, body: AsyncIterator[bytes], headers: GitHeaders) -> UpstreamReply:
        self.calls.append("receive_pack")
        return await self.inner.receive_pack(self._watch(body), headers)

    async def _watch(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in body:
            if self.taken_at_first_chunk is None:
                self.taken_at_first_chunk = self.tap.received
            self.largest_chunk = max(self.largest_chunk, len(chunk))
            yield chunk


@dataclass
class Proxy:
    base: str
    url: str
    bare: Path
    authority: FakeAuthority
    spy: SpyUpstream
    tap: AsgiTap
    git: Git
    root: Path

    async def clone(self, name: str = "work") -> Path:
        work = self.root / name
        await self.git.run("clone", "--quiet", self.url, str(work), cwd=self.root)
        await self.git.run("checkout", "--quiet", "-b", SESSION_BRANCH, cwd=work)
        return work

    async def upstream_ref(self, ref: str) -> str | None:
        result = await self.git.run(
            "rev-parse", "--verify", "--quiet", ref, cwd=self.bare, check=False
        )
        return result.stdout.strip() or None


@pytest.fixture
def git(tmp_path: Path) -> Git:
    return Git(tmp_path / "home", bearer_env())


async def start_proxy(
    tmp_path: Path, git: Git, upstream: Upstream | None = None, **options: float
) -> Proxy:
    bare = await make_upstream(Git(tmp_path / "home"), tmp_path / "upstreams")
    tap = AsgiTap(Starlette())
    spy = SpyUpstream(upstream or LocalUpstream(bare), tap)
    authority = FakeAuthority(spy)
    tap.app = Starlette(routes=git_proxy_routes(authority, options=GitProxyOptions(**options)))
    return Proxy("", "", bare, authority, spy, tap, git, tmp_path)


@pytest.fixture
async def proxy(tmp_path: Path, git: Git) -> AsyncIterator[Proxy]:
    served = await start_proxy(tmp_path, git)
    async with serve(served.tap) as base:
        served.base = base
        served.url = f"{base}/git/{SESSION}/{OWNER}/{REPO}.git"
        yield served


# ---------------------------------------------------------------- fetch


async def test_clone_and_fetch_through_the_proxy(proxy: Proxy) -> None:
    work = await proxy.clone()
    assert (work / "README.md").read_text() == "# widgets\n"
    assert await proxy.git.out("rev-parse", "origin/main", cwd=work) == await proxy.upstream_ref(
        "main"
    )
    # Upstream moves on; a fetch through the proxy sees it.
    other = proxy.root / "other"
    await proxy.git.run("clone", "--quiet", str(proxy.bare), str(other), cwd=proxy.root)
    moved = await commit(proxy.git, other, "later.txt")
    await proxy.git.run("push", "--quiet", "origin", "main", cwd=other)
    await proxy.git.run("fetch", "--quiet", "origin", cwd=work)
    assert await proxy.git.out("rev-parse", "origin/main", cwd=work) == moved
    assert set(proxy.authority.credentials) == {TOKEN}
    assert "upload_pack" in proxy.spy.calls
    assert "receive_pack" not in proxy.spy.calls


async def test_protocol_v0_clone(proxy: Proxy) -> None:
    proxy.git.extra_env |= {"GIT_PROTOCOL_VERSION": "0"}
    work = proxy.root / "v0"
    await proxy.git.run(
        "-c", "protocol.version=0", "clone", "--quiet", proxy.url, str(work), cwd=proxy.root
    )
    assert (work / "README.md").exists()
    assert all(h.git_protocol is None for h in proxy.spy.headers)


# ---------------------------------------------------------------- pushes that land


async def test_push_to_the_session_branch_lands(proxy: Proxy) -> None:
    work = await proxy.clone()
    sha = await commit(proxy.git, work, "feature.txt")
    result = await proxy.git.run("push", "origin", "HEAD", cwd=work)
    assert f"[new branch]      HEAD -> {SESSION_BRANCH}" in result.stderr
    assert await proxy.upstream_ref(SESSION_BRANCH) == sha
    # and again: an update, then a force-push
    second = await commit(proxy.git, work, "more.txt")
    await proxy.git.run("push", "--quiet", "origin", "HEAD", cwd=work)
    assert await proxy.upstream_ref(SESSION_BRANCH) == second
    await proxy.git.run("reset", "--quiet", "--hard", "HEAD~1", cwd=work)
    rewritten = await commit(proxy.git, work, "instead.txt")
    await proxy.git.run("push", "--quiet", "--force", "origin", "HEAD", cwd=work)
    assert await proxy.upstream_ref(SESSION_BRANCH) == rewritten

    pushes = proxy.authority.pushes
    assert [(p.ok, [u.ref for u in p.updates]) for p in pushes] == [
        (True, [f"refs/heads/{SESSION_BRANCH}"]),
    ] * 3
    assert pushes[0].message == f"pushed refs/heads/{SESSION_BRANCH}"
    assert pushes[0].updates[0].is_create and pushes[0].updates[0].new == sha


async def test_a_created_branch_can_then_be_updated_and_deleted(proxy: Proxy) -> None:
    work = await proxy.clone()
    first = await commit(proxy.git, work, "a.txt")
    other = f"{SESSION_BRANCH}-other"
    await proxy.git.run("push", "--quiet", "origin", f"HEAD:{other}", cwd=work)
    assert await proxy.upstream_ref(other) == first
    assert proxy.authority.created == {other}

    second = await commit(proxy.git, work, "b.txt")
    await proxy.git.run("push", "--quiet", "origin", f"HEAD:{other}", cwd=work)
    assert await proxy.upstream_ref(other) == second
    await proxy.git.run("push", "--quiet", "--force", "origin", f"HEAD~2:{other}", cwd=work)
    await proxy.git.run("push", "--quiet", "origin", f":{other}", cwd=work)
    assert await proxy.upstream_ref(other) is None
    assert [p.ok for p in proxy.authority.pushes] == [True] * 4


async def test_the_upstreams_own_refusal_is_reported(proxy: Proxy) -> None:
    hook = proxy.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'policy says no' >&2\nexit 1\n")
    hook.chmod(0o755)
    work = await proxy.clone()
    await commit(proxy.git, work, "x.txt")
    result = await proxy.git.run("push", "origin", "HEAD", cwd=work, check=False)
    assert result.code != 0
    assert "remote: policy says no" in result.stderr
    assert "[remote rejected] HEAD -> openinspect/ses1 (pre-receive hook declined)" in result.stderr
    (pushed,) = proxy.authority.pushes
    assert not pushed.ok
    assert pushed.message == (
        "push failed\nrefs/heads/openinspect/ses1: pre-receive hook declined\n"
        "remote: policy says no"
    )


# ---------------------------------------------------------------- refusals


async def assert_refused(proxy: Proxy, work: Path, args: list[str], lines: list[str]) -> str:
    """Push, expect git to fail with every line of ``lines`` in its stderr, and nothing to have
    reached the upstream's receive-pack."""
    before = await proxy.git.out("for-each-ref", cwd=proxy.bare)
    calls_before = proxy.spy.calls.count("receive_pack")
    result = await proxy.git.run("push", *args, cwd=work, check=False)
    assert result.code != 0, result.stderr
    for line in lines:
        assert line in result.stderr, result.stderr
    assert await proxy.git.out("for-each-ref", cwd=proxy.bare) == before
    assert proxy.spy.calls.count("receive_pack") == calls_before
    assert not proxy.authority.pushes[-1].ok
    return result.stderr


async def test_push_to_the_base_branch_is_refused(proxy: Proxy) -> None:
    work = await proxy.clone()
    sha = await commit(proxy.git, work, "x.txt")
    stderr = await assert_refused(
        proxy,
        work,
        ["origin", "HEAD:main"],
        [
            "remote: openinspect: push refused; nothing was pushed:",
            "remote: openinspect:   refs/heads/main: main is the base branch; "
            "push to openinspect/ses1 instead",
            " ! [remote rejected] HEAD -> main "
            "(main is the base branch; push to openinspect/ses1 instead)",
        ],
    )
    assert "error: failed to push some refs" in stderr
    # The pack never reached the upstream.
    missing = await proxy.git.run("cat-file", "-e", sha, cwd=proxy.bare, check=False)
    assert missing.code != 0
    assert proxy.authority.pushes[-1].message == (
        "push refused\nrefs/heads/main: main is the base branch; push to openinspect/ses1 instead"
    )


async def test_force_push_and_delete_of_the_base_branch_are_refused(proxy: Proxy) -> None:
    work = await proxy.clone()
    await proxy.git.run("commit", "--quiet", "--amend", "-m", "rewritten", cwd=work)
    reason = "(main is the base branch; push to openinspect/ses1 instead)"
    await assert_refused(
        proxy, work, ["--force", "origin", "HEAD:main"], [f"HEAD -> main {reason}"]
    )
    await assert_refused(proxy, work, ["origin", ":main"], [f"[remote rejected] main {reason}"])


async def test_tag_push_is_refused(proxy: Proxy) -> None:
    work = await proxy.clone()
    await proxy.git.run("tag", "v2", cwd=work)
    await assert_refused(
        proxy,
        work,
        ["origin", "v2"],
        ["! [remote rejected] v2 -> v2 (tag pushes are not allowed from a session)"],
    )
    await assert_refused(
        proxy,
        work,
        ["origin", ":refs/tags/v1"],
        ["! [remote rejected] v1 (tag pushes are not allowed from a session)"],
    )


async def test_deleting_a_branch_the_session_did_not_create_is_refused(proxy: Proxy) -> None:
    work = await proxy.clone()
    await assert_refused(
        proxy,
        work,
        ["origin", ":openinspect/existing"],
        [
            "! [remote rejected] openinspect/existing (openinspect/existing was not created "
            "by this session; deleting it is refused)"
        ],
    )
    await commit(proxy.git, work, "y.txt")
    await assert_refused(
        proxy,
        work,
        ["--force", "origin", "HEAD:openinspect/existing"],
        ["(sessions may push only to openinspect/ses1 or to new branches named"],
    )


async def test_other_branches_are_refused_and_a_push_is_all_or_nothing(proxy: Proxy) -> None:
    work = await proxy.clone()
    await commit(proxy.git, work, "z.txt")
    await assert_refused(
        proxy,
        work,
        ["origin", "HEAD", "HEAD:feature"],
        [
            "! [remote rejected] HEAD -> feature (sessions may push only to openinspect/ses1 "
            "or to new branches named openinspect/ses1-<name>)",
            "! [remote rejected] HEAD -> openinspect/ses1 (not pushed: another ref in this push "
            "was refused",
        ],
    )
    assert await proxy.upstream_ref(SESSION_BRANCH) is None


async def test_refusal_without_side_band_still_reports_every_ref(proxy: Proxy) -> None:
    """A client that did not ask for side-band gets the bare report (no message band)."""
    head = (await proxy.upstream_ref("main")) or ""
    body = encode(f"{head} {'0' * 40} refs/heads/main\0report-status") + FLUSH
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{proxy.url}/git-receive-pack",
            content=body,
            headers={**AUTH_HEADER, "Content-Type": "application/x-git-receive-pack-request"},
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-git-receive-pack-result"
    reader = ReportStatusReader(sideband=False)
    reader.feed(response.content)
    assert reader.unpack == "ok"
    assert reader.refs == {
        "refs/heads/main": "main is the base branch; push to openinspect/ses1 instead"
    }


# ---------------------------------------------------------------- authentication and errors


async def test_missing_or_wrong_credentials_get_401(proxy: Proxy) -> None:
    proxy.git.extra_env = {}
    missing = await proxy.git.run("ls-remote", proxy.url, cwd=proxy.root, check=False)
    assert missing.code != 0
    assert "terminal prompts disabled" in missing.stderr  # git asked for credentials: a 401

    wrong_url = proxy.url.replace("http://", "http://x-token:wrong@")
    wrong = await proxy.git.run("ls-remote", wrong_url, cwd=proxy.root, check=False)
    assert wrong.code != 0
    assert "remote: openinspect: The sandbox token is not valid for this session" in wrong.stderr
    assert "Authentication failed" in wrong.stderr

    # The password of HTTP Basic works like the bearer token.
    right_url = proxy.url.replace("http://", f"http://x-token:{TOKEN}@")
    right = await proxy.git.run("ls-remote", right_url, cwd=proxy.root)
    assert "refs/heads/main" in right.stdout

    async with httpx.AsyncClient() as client:
        response = await client.get(f"{proxy.url}/info/refs?service=git-upload-pack")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.text == (
        "openinspect: A sandbox token is required (send Authorization: Bearer …)\n"
    )
    assert None in proxy.authority.credentials


async def test_unknown_session_or_repo_is_not_found(proxy: Proxy) -> None:
    url = proxy.url.replace(f"/{SESSION}/", "/ses-nope/")
    result = await proxy.git.run("ls-remote", url, cwd=proxy.root, check=False)
    assert result.code != 0
    assert "remote: openinspect: No session ses-nope" in result.stderr
    assert "not found" in result.stderr
    other = proxy.url.replace(f"/{REPO}.git", "/gadgets.git")
    result = await proxy.git.run("ls-remote", other, cwd=proxy.root, check=False)
    assert "remote: openinspect: acme/gadgets is not a repository of session ses1" in result.stderr


async def test_only_smart_http_is_served(proxy: Proxy) -> None:
    async with httpx.AsyncClient(headers=AUTH_HEADER) as client:
        dumb = await client.get(f"{proxy.url}/info/refs")
        other = await client.get(f"{proxy.url}/info/refs?service=git-upload-archive")
        objects = await client.get(f"{proxy.url}/HEAD")
        bad_encoding = await client.post(
            f"{proxy.url}/git-receive-pack", content=b"0000", headers={"Content-Encoding": "br"}
        )
    assert dumb.status_code == 403 and "smart HTTP protocol only" in dumb.text
    assert other.status_code == 403
    assert objects.status_code == 404
    assert bad_encoding.status_code == 422
    assert "Unsupported Content-Encoding 'br'" in bad_encoding.text


async def test_bad_push_requests_get_a_clear_error(proxy: Proxy) -> None:
    async with httpx.AsyncClient(headers=AUTH_HEADER) as client:
        garbage = await client.post(f"{proxy.url}/git-receive-pack", content=b"hello world")
        probe = await client.post(f"{proxy.url}/git-receive-pack", content=FLUSH)
    assert garbage.status_code == 422
    assert garbage.text.startswith("openinspect: Expected a pkt-line length")
    assert probe.status_code == 200 and probe.content == b""  # git's auth probe
    assert proxy.authority.pushes == []
    assert "receive_pack" not in proxy.spy.calls


async def test_an_over_long_push_is_killed_at_the_deadline(tmp_path: Path, git: Git) -> None:
    served = await start_proxy(tmp_path, git, timeout_s=3.0)
    pid_file = tmp_path / "hook.pid"
    hook = served.bare / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    hook.chmod(0o755)
    async with serve(served.tap) as base:
        served.url = f"{base}/git/{SESSION}/{OWNER}/{REPO}.git"
        work = await served.clone()
        await commit(git, work, "slow.txt")
        result = await git.run("push", "origin", "HEAD", cwd=work, check=False)
    assert result.code != 0
    assert "remote: openinspect: push failed: timed out" in result.stderr
    assert "error: remote unpack failed: aborted by the openinspect git proxy" in result.stderr
    assert "! [remote rejected] HEAD -> openinspect/ses1 (push failed: timed out)" in result.stderr
    pid = int(pid_file.read_text())
    deadline = asyncio.get_running_loop().time() + 10
    while _alive(pid):  # SIGKILLed with its process group; wait for it to be reaped
        assert asyncio.get_running_loop().time() < deadline, "the hook outlived the push"
        await asyncio.sleep(0.05)
    assert await served.upstream_ref(SESSION_BRANCH) is None
    (pushed,) = served.authority.pushes
    assert not pushed.ok and pushed.message == "push failed: timed out"


async def test_a_push_over_the_body_limit_is_stopped(tmp_path: Path, git: Git) -> None:
    served = await start_proxy(tmp_path, git, max_body_bytes=200_000)
    async with serve(served.tap) as base:
        served.url = f"{base}/git/{SESSION}/{OWNER}/{REPO}.git"
        work = await served.clone()
        (work / "big.bin").write_bytes(os.urandom(2_000_000))
        await git.run("add", "big.bin", cwd=work)
        await git.run("commit", "--quiet", "-m", "too big", cwd=work)
        result = await git.run("push", "origin", "HEAD", cwd=work, check=False)
    assert result.code != 0
    assert await served.upstream_ref(SESSION_BRANCH) is None
    (pushed,) = served.authority.pushes
    assert not pushed.ok
    assert pushed.message == (
        "push failed: The request body is larger than the proxy's limit of 200000 bytes "
        "(push less at once)"
    )
    assert f"! [remote rejected] HEAD -> {SESSION_BRANCH} ({pushed.message})" in result.stderr
    assert served.tap.received < 2_000_000  # it stopped reading, rather than drain it all


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1][:1] != "Z"


async def test_a_client_that_goes_away_stops_the_upstream(proxy: Proxy) -> None:
    """git upload-pack is killed when its client leaves halfway through the request."""
    marker = f"upload-pack --stateless-rpc {proxy.bare}"
    host, port = proxy.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    path = proxy.url.removeprefix(proxy.base) + "/git-upload-pack"
    want = encode(f"want {await proxy.upstream_ref('main')} side-band-64k ofs-delta\n")
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/x-git-upload-pack-request\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
        + b"%x\r\n%s\r\n" % (len(want), want)  # no flush, no "done", no last chunk
    )
    await writer.drain()
    assert await _wait_for(lambda: bool(_pids(marker))), "upload-pack never started"
    writer.close()
    await writer.wait_closed()
    assert await _wait_for(lambda: not _pids(marker)), "upload-pack outlived its client"
    del reader


@dataclass
class EndlessUpstream:
    """Answers info/refs with an endless body; records when the proxy closes it."""

    closed: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0

    async def info_refs(self, service: Service, headers: GitHeaders) -> UpstreamReply:
        async def body() -> AsyncIterator[bytes]:
            while True:
                self.sent += 1
                yield encode(b"x" * 1000)
                await asyncio.sleep(0)

        async def close() -> None:
            self.closed.set()

        return UpstreamReply(200, {"Content-Type": "text/plain"}, body(), close)

    async def upload_pack(self, body: AsyncIterator[bytes], headers: GitHeaders) -> UpstreamReply:
        raise NotImplementedError

    async def receive_pack(self, body: AsyncIterator[bytes], headers: GitHeaders) -> UpstreamReply:
        raise NotImplementedError


async def test_a_client_that_stops_reading_stops_the_answer(tmp_path: Path, git: Git) -> None:
    endless = EndlessUpstream()
    served = await start_proxy(tmp_path, git, endless)
    async with serve(served.tap) as base:
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"GET /git/{SESSION}/{OWNER}/{REPO}.git/info/refs?service=git-upload-pack HTTP/1.1\r\n"
            f"Host: {host}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
        )
        assert (await reader.readexactly(100)).startswith(b"HTTP/1.1 200 OK")
        writer.close()
        await writer.wait_closed()
        # The proxy notices the disconnect, stops pulling and closes the upstream's answer.
        await asyncio.wait_for(endless.closed.wait(), 10)


def _pids(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(proc.name))
    return found


async def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# ---------------------------------------------------------------- streaming and gzip


async def test_a_large_push_and_clone_stream_through(proxy: Proxy) -> None:
    work = await proxy.clone()
    (work / "blob.bin").write_bytes(os.urandom(BIG_BYTES))
    await proxy.git.run("add", "blob.bin", cwd=work)
    await proxy.git.run("commit", "--quiet", "-m", "big", cwd=work)
    await proxy.git.run("push", "--quiet", "origin", "HEAD", cwd=work)
    assert await proxy.upstream_ref(SESSION_BRANCH) == await proxy.git.out(
        "rev-parse", "HEAD", cwd=work
    )
    # The upstream got the first bytes of the push while the proxy had taken only a sliver of
    # it from the client: nothing waited for the whole pack.
    assert proxy.tap.received > BIG_BYTES
    assert proxy.spy.taken_at_first_chunk is not None
    assert proxy.spy.taken_at_first_chunk < 4 * 1024 * 1024
    assert proxy.spy.largest_chunk <= 1024 * 1024

    # And back down: the clone's pack goes out in small pieces, as upload-pack writes it.
    proxy.tap.sent_chunks.clear()
    clone = proxy.root / "again"
    await proxy.git.run(
        "clone", "--quiet", "--branch", SESSION_BRANCH, proxy.url, str(clone), cwd=proxy.root
    )
    assert (clone / "blob.bin").stat().st_size == BIG_BYTES
    assert sum(proxy.tap.sent_chunks) > BIG_BYTES
    assert max(proxy.tap.sent_chunks) <= 1024 * 1024


def fast_import_commit(i: int) -> str:
    message = f"local {i}\n"
    parent = f"from refs/heads/{SESSION_BRANCH}\n" if i == 1 else ""
    return (
        f"commit refs/heads/local\nmark :{i}\n"
        f"committer Ada <ada@example.com> {4_000_000_000 + i} +0000\n"
        f"data {len(message)}\n{message}{parent}\n"
    )


async def test_gzip_fetch_negotiation_from_real_git(proxy: Proxy) -> None:
    """git gzips an upload-pack request over 1 KiB: many local commits make many haves."""
    work = await proxy.clone()
    stream = "".join(fast_import_commit(i) for i in range(1, 301))
    proc = await asyncio.create_subprocess_exec(
        "git", "fast-import", "--quiet", cwd=work, stdin=asyncio.subprocess.PIPE
    )
    await proc.communicate(stream.encode())
    assert proc.returncode == 0
    other = proxy.root / "other"
    await proxy.git.run("clone", "--quiet", str(proxy.bare), str(other), cwd=proxy.root)
    moved = await commit(proxy.git, other, "upstream.txt")
    await proxy.git.run("push", "--quiet", "origin", "main", cwd=other)

    await proxy.git.run("fetch", "--quiet", "origin", cwd=work)
    assert await proxy.git.out("rev-parse", "origin/main", cwd=work) == moved
    encodings = [
        r["headers"].get("content-encoding")
        for r in proxy.tap.requests
        if r["path"].endswith("/git-upload-pack")
    ]
    assert "gzip" in encodings


async def test_a_gzip_push_body(proxy: Proxy) -> None:
    """A push whose body is gzip (other clients do that) is decoded, judged and forwarded."""
    work = await proxy.clone()
    sha = await commit(proxy.git, work, "gz.txt")
    base = await proxy.upstream_ref("main")
    proc = await asyncio.create_subprocess_exec(
        "git",
        "pack-objects",
        "--stdout",
        "--revs",
        "--quiet",
        cwd=work,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    pack, _ = await proc.communicate(f"{sha}\n^{base}\n".encode())
    ref = f"refs/heads/{SESSION_BRANCH}-gz"
    body = encode(f"{'0' * 40} {sha} {ref}\0report-status side-band-64k") + FLUSH + pack
    async with httpx.AsyncClient(headers=AUTH_HEADER) as client:
        response = await client.post(
            f"{proxy.url}/git-receive-pack",
            content=gzip.compress(body),
            headers={
                "Content-Encoding": "gzip",
                "Content-Type": "application/x-git-receive-pack-request",
            },
        )
    assert response.status_code == 200
    reader = ReportStatusReader(sideband=True)
    reader.feed(response.content)
    assert reader.refs == {ref: None}
    assert await proxy.upstream_ref(ref) == sha
    assert proxy.authority.pushes[-1].ok


# ---------------------------------------------------------------- HTTP upstream


async def test_http_upstream_with_a_rotating_credential(tmp_path: Path, git: Git) -> None:
    bare = await make_upstream(Git(tmp_path / "home"), tmp_path / "backend")
    backend = HttpBackend(tmp_path / "backend", valid={"tok-1"})
    current = {"token": "tok-1"}
    asked: list[str] = []

    async def credential() -> tuple[str, str]:
        asked.append(current["token"])
        return ("x-access-token", current["token"])

    async with serve(backend.app()) as backend_base:
        upstream = HttpUpstream(f"{backend_base}/{OWNER}/{REPO}.git", credential)
        served = await start_proxy(tmp_path / "p", git, upstream)
        async with serve(served.tap) as base:
            served.url = f"{base}/git/{SESSION}/{OWNER}/{REPO}.git"
            served.bare = bare
            work = await served.clone()
            first = await commit(git, work, "one.txt")
            await git.run("push", "--quiet", "origin", "HEAD", cwd=work)
            assert await served.upstream_ref(SESSION_BRANCH) == first

            # The token expires and is replaced; the next push uses the new one.
            backend.valid = {"tok-2"}
            current["token"] = "tok-2"
            asked_before = len(asked)
            second = await commit(git, work, "two.txt")
            await git.run("push", "--quiet", "origin", "HEAD", cwd=work)
            assert await served.upstream_ref(SESSION_BRANCH) == second
            assert asked[asked_before:] == ["tok-2", "tok-2"]  # info/refs and receive-pack
            assert backend.seen[-2:] == ["tok-2", "tok-2"]
            assert "tok-1" in backend.seen
            assert [p.ok for p in served.authority.pushes] == [True, True]

            # A refused push never reaches the backend's receive-pack.
            seen_before = len(backend.seen)
            refused = await git.run("push", "origin", "HEAD:main", cwd=work, check=False)
            assert "main is the base branch" in refused.stderr
            assert len(backend.seen) == seen_before + 1  # only the info/refs

            # A large push streams through the HTTP upstream as well.
            (work / "big.bin").write_bytes(os.urandom(8 * 1024 * 1024))
            await git.run("add", "big.bin", cwd=work)
            await git.run("commit", "--quiet", "-m", "big", cwd=work)
            await git.run("push", "--quiet", "origin", "HEAD", cwd=work)
            assert await served.upstream_ref(SESSION_BRANCH) == await git.out(
                "rev-parse", "HEAD", cwd=work
            )

            # Upstream refuses the proxy's credentials: git shows why.
            current["token"] = "revoked"
            failed = await git.run("fetch", "origin", cwd=work, check=False)
            assert failed.code != 0
            assert (
                "remote: openinspect: The upstream git server refused the proxy's credentials "
                "(HTTP 401): Invalid username or password." in failed.stderr
            )


async def test_http_upstream_that_is_missing_or_down(tmp_path: Path, git: Git) -> None:
    backend = HttpBackend(tmp_path / "backend", valid={"tok"})
    (tmp_path / "backend").mkdir()

    async def credential() -> tuple[str, str]:
        return ("x", "tok")

    async with serve(backend.app()) as backend_base:
        missing = HttpUpstream(f"{backend_base}/{OWNER}/nope.git", credential)
        served = await start_proxy(tmp_path / "p", git, missing)
        async with serve(served.tap) as base:
            url = f"{base}/git/{SESSION}/{OWNER}/{REPO}.git"
            result = await git.run("ls-remote", url, cwd=tmp_path, check=False)
    assert result.code != 0
    assert "remote: openinspect: The upstream repository was not found (HTTP 404)" in result.stderr

    down = HttpUpstream("http://127.0.0.1:9/acme/widgets.git", credential)
    served = await start_proxy(tmp_path / "q", git, down)
    async with serve(served.tap) as base:
        url = f"{base}/git/{SESSION}/{OWNER}/{REPO}.git"
        result = await git.run("ls-remote", url, cwd=tmp_path, check=False)
    assert result.code != 0
    assert "remote: openinspect: Cannot reach the upstream git server" in result.stderr
