"""The fake GitHub with real clients: the git CLI over smart HTTP, githubkit's response models,
webhook deliveries to a real HTTP receiver, persistence, and the standalone CLI command."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import re
import shlex
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import githubkit
import httpx
import pytest
from githubkit import AppAuthStrategy, TokenAuthStrategy
from githubkit.exception import RequestFailed
from githubkit_schemas.latest import models

from openinspect.errors import WebhookSignatureInvalid
from openinspect.scm.base import RepoRef
from openinspect.scm.github import GitHub
from openinspect.scm.webhooks import verify_signature
from openinspect.settings import GitHubSettings
from openinspect.testing.github import FakeGitHub
from tests.testing.cli_process import fake_server_cli

REPO = "acme/widgets"
REF = RepoRef("acme", "widgets")
CLI_START_TIMEOUT_S = 90
ROOT = Path(__file__).resolve().parents[2]


class Receiver:
    """A webhook endpoint on a real socket that records each delivery and answers 202."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/github"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fake(origin: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.add_user("alice", orgs=["acme"])
        server.add_user("bob")
        server.add_user("carol")
        server.create_repo(REPO, source=origin, collaborators={"alice": "push", "carol": "pull"})
        server.add_installation([REPO])
        yield server


def git(
    *args: str, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Alice",
        "GIT_AUTHOR_EMAIL": "alice@acme.test",
        "GIT_COMMITTER_NAME": "Alice",
        "GIT_COMMITTER_EMAIL": "alice@acme.test",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check, timeout=60
    )


def commit(work: Path, name: str) -> str:
    (work / name).write_text(name)
    git("add", name, cwd=work)
    git("commit", "-q", "-m", f"add {name}", cwd=work)
    return git("rev-parse", "HEAD", cwd=work).stdout.strip()


# ---------------------------------------------------------------------- git over smart HTTP


async def test_clone_and_push_with_an_installation_token(
    fake: FakeGitHub, tmp_path: Path, receiver: Receiver
) -> None:
    fake.subscribe_webhooks(receiver.url)
    async with GitHub(fake.settings()) as gh:
        token = (await gh.installation_token(REF)).token
    work = tmp_path / "work"
    git("clone", "-q", fake.clone_url(REPO, token), str(work))
    assert (work / "calc.py").exists()
    git("checkout", "-q", "-b", "openinspect/s1", cwd=work)
    sha = commit(work, "fix.txt")
    git("push", "-q", "origin", "openinspect/s1", cwd=work)
    assert fake.branch_sha(REPO, "openinspect/s1") == sha
    pushes = fake.requests_to("POST", r"/acme/widgets\.git/git-receive-pack$")
    assert [(r.auth, r.surface, r.status) for r in pushes] == [("installation", "git", 200)]

    [delivery] = await fake.await_deliveries(event="push")
    assert delivery.payload["ref"] == "refs/heads/openinspect/s1"
    assert delivery.payload["after"] == sha
    assert delivery.payload["created"] is True
    assert delivery.payload["sender"]["login"] == "openinspect-fake[bot]"
    assert delivery.status_code == 202


def test_push_needs_credentials_and_write_access(fake: FakeGitHub, tmp_path: Path) -> None:
    work = tmp_path / "work"
    alice = fake.user_token("alice")
    git("clone", "-q", fake.clone_url(REPO, alice, user="alice"), str(work))
    commit(work, "x.txt")
    anonymous = fake.clone_url(REPO)
    refused = git("push", anonymous, "HEAD:refs/heads/anon", cwd=work, check=False)
    assert refused.returncode != 0
    assert "could not read Username" in refused.stderr or "Authentication failed" in refused.stderr
    carol = git(
        "push",
        fake.clone_url(REPO, fake.user_token("carol"), user="carol"),
        "HEAD:refs/heads/c",
        cwd=work,
        check=False,
    )
    assert carol.returncode != 0
    assert "403" in carol.stderr or "denied to carol" in carol.stderr
    bob = git(
        "clone",
        "-q",
        fake.clone_url(REPO, fake.user_token("bob"), user="bob"),
        str(tmp_path / "b"),
        check=False,
    )
    assert bob.returncode != 0
    assert "not found" in bob.stderr.lower()
    ok = git("push", "-q", "origin", "HEAD:refs/heads/alice", cwd=work)
    assert ok.returncode == 0
    assert fake.branch_sha(REPO, "alice") is not None
    assert fake.branch_sha(REPO, "anon") is None
    assert fake.branch_sha(REPO, "c") is None
    statuses = [(r.auth, r.status) for r in fake.requests if r.path.endswith("/info/refs")]
    assert ("anonymous", 401) in statuses
    assert ("user", 403) in statuses
    assert ("user", 404) in statuses


def test_public_repos_clone_anonymously(fake: FakeGitHub, origin: Path, tmp_path: Path) -> None:
    fake.create_repo("acme/open", source=origin, private=False)
    git("clone", "-q", fake.clone_url("acme/open"), str(tmp_path / "open"))
    assert (tmp_path / "open" / "calc.py").exists()
    refused = git("clone", "-q", fake.clone_url(REPO), str(tmp_path / "closed"), check=False)
    assert refused.returncode != 0


async def test_an_expired_token_is_refused_and_a_fresh_one_works(
    fake: FakeGitHub, tmp_path: Path
) -> None:
    async with GitHub(fake.settings()) as gh:
        old = (await gh.installation_token(REF)).token
    fake.expire_installation_tokens()
    refused = git("clone", "-q", fake.clone_url(REPO, old), str(tmp_path / "a"), check=False)
    assert refused.returncode != 0
    assert "Authentication failed" in refused.stderr
    # The API refuses it too.
    response = httpx.get(
        f"{fake.api_url}/installation/repositories", headers={"Authorization": f"token {old}"}
    )
    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"
    async with GitHub(fake.settings()) as gh:
        fresh = (await gh.installation_token(REF)).token
    assert fresh != old
    git("clone", "-q", fake.clone_url(REPO, fresh), str(tmp_path / "b"))


def test_a_token_scoped_to_one_repo_cannot_reach_another(
    fake: FakeGitHub, origin: Path, tmp_path: Path
) -> None:
    fake.create_repo("acme/gadgets", source=origin)
    inst = next(iter(fake.state.data.installations))
    fake.state.extend_installation(inst, ["acme/gadgets"])
    token = fake.mint_installation_token(inst, ["widgets"]).token
    git("clone", "-q", fake.clone_url(REPO, token), str(tmp_path / "w"))
    other = git(
        "clone", "-q", fake.clone_url("acme/gadgets", token), str(tmp_path / "g"), check=False
    )
    assert other.returncode != 0


def test_a_large_push_streams_through(fake: FakeGitHub, tmp_path: Path) -> None:
    work = tmp_path / "work"
    token = fake.mint_installation_token(next(iter(fake.state.data.installations))).token
    git("clone", "-q", fake.clone_url(REPO, token), str(work))
    (work / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # incompressible
    git("add", "blob.bin", cwd=work)
    git("commit", "-q", "-m", "big", cwd=work)
    git("-c", "http.postBuffer=65536", "push", "-q", "origin", "HEAD:refs/heads/big", cwd=work)
    assert fake.branch_sha(REPO, "big") == git("rev-parse", "HEAD", cwd=work).stdout.strip()


def test_commit_moves_a_branch_and_announces_it(
    fake: FakeGitHub, receiver: Receiver, tmp_path: Path
) -> None:
    first = fake.commit(REPO, "feature", {"docs/a.md": "one\n"}, "Add a", by="alice")
    httpx.post(
        f"{fake.api_url}/repos/acme/widgets/pulls",
        headers={"Authorization": f"token {fake.user_token('alice')}"},
        json={"title": "T", "head": "acme:feature", "base": "main"},
    ).raise_for_status()
    fake.subscribe_webhooks(receiver.url)
    second = fake.commit(REPO, "feature", {"docs/b.md": "two\n"}, by="alice")
    push, sync = fake.deliveries
    assert (push.event, push.payload["before"], push.payload["after"]) == ("push", first, second)
    assert push.payload["forced"] is False
    assert (sync.event, sync.action) == ("pull_request", "synchronize")
    assert sync.payload["pull_request"]["head"]["sha"] == second
    token = fake.mint_installation_token(next(iter(fake.state.data.installations))).token
    git("clone", "-q", "--branch", "feature", fake.clone_url(REPO, token), str(tmp_path / "w"))
    assert (tmp_path / "w" / "docs" / "a.md").read_text() == "one\n"
    assert (tmp_path / "w" / "calc.py").exists()  # started from main
    log = git("log", "--format=%an %s", "-n2", cwd=tmp_path / "w").stdout.splitlines()
    assert log == ["alice Update feature", "alice Add a"]


# ---------------------------------------------------------------------- REST shapes


async def test_responses_validate_against_githubkits_models(
    fake: FakeGitHub, tmp_path: Path
) -> None:
    """Endpoints our client does not parse itself are checked against githubkit's models here."""
    async with GitHub(fake.settings()) as ours:
        token = (await ours.installation_token(REF)).token
    gh = githubkit.GitHub(TokenAuthStrategy(token), base_url=fake.api_url, http_cache=False)
    branch = (await gh.rest.repos.async_get_branch("acme", "widgets", "main")).parsed_data
    assert branch.commit.sha == fake.branch_sha(REPO, "main")
    assert isinstance(branch, models.BranchWithProtection)
    repo = (await gh.rest.repos.async_get("acme", "widgets")).parsed_data
    assert (repo.full_name, repo.private, repo.default_branch) == ("acme/widgets", True, "main")
    assert repo.clone_url == f"{fake.url}/acme/widgets.git"
    with pytest.raises(RequestFailed) as info:
        await gh.rest.repos.async_get_branch("acme", "widgets", "nope")
    assert info.value.response.status_code == 404
    assert info.value.response.json() == {
        "message": "Branch not found",
        "documentation_url": "https://docs.github.com/rest",
        "status": "404",
    }
    app = githubkit.GitHub(
        AppAuthStrategy(fake.app_id, fake.app_private_key_pem()),
        base_url=fake.api_url,
        http_cache=False,
    )
    me = (await app.rest.apps.async_get_authenticated()).parsed_data
    assert me is not None
    assert me.slug == "openinspect-fake"
    [inst] = (await app.rest.apps.async_list_installations()).parsed_data
    assert inst.app_id == fake.app_id
    assert inst.account is not None


def test_errors_have_githubs_shape(fake: FakeGitHub) -> None:
    response = httpx.get(f"{fake.api_url}/repos/acme/widgets")
    assert response.status_code == 404  # private: hidden from anonymous callers
    assert response.json()["message"] == "Not Found"
    assert response.headers["x-ratelimit-limit"] == "5000"
    response = httpx.get(f"{fake.api_url}/user")
    assert (response.status_code, response.json()["message"]) == (401, "Requires authentication")
    response = httpx.get(f"{fake.api_url}/user", headers={"Authorization": "Bearer eyJ.x.y"})
    assert (response.status_code, response.json()["message"]) == (
        401,
        "A JSON web token could not be decoded",
    )
    response = httpx.get(f"{fake.api_url}/no/such/endpoint")
    assert response.status_code == 404
    token = fake.user_token("alice")
    for scheme in ("Bearer", "token"):
        response = httpx.get(f"{fake.api_url}/user", headers={"Authorization": f"{scheme} {token}"})
        assert response.json()["login"] == "alice"


# ---------------------------------------------------------------------- webhooks


async def test_merge_delivers_a_signed_pull_request_webhook(
    fake: FakeGitHub, receiver: Receiver, tmp_path: Path
) -> None:
    fake.subscribe_webhooks(receiver.url, "s3cret")
    async with GitHub(fake.settings()) as gh:
        token = (await gh.installation_token(REF)).token
        work = tmp_path / "w"
        git("clone", "-q", fake.clone_url(REPO, token), str(work))
        commit(work, "a.txt")
        git("push", "-q", "origin", "HEAD:refs/heads/feature", cwd=work)
        pull = await gh.create_pull(
            REF,
            head="feature",
            base="main",
            title="T",
            body="B",
            user_token=fake.user_token("alice"),
        )
    opened = await fake.await_deliveries(event="pull_request", action="opened")
    assert opened[0].payload["pull_request"]["user"]["login"] == "alice"

    delivery = fake.merge_pull(REPO, pull.number)
    assert delivery is not None
    assert delivery.status_code == 202
    headers, body = receiver.received[-1]
    assert headers["x-github-event"] == "pull_request"
    assert headers["x-github-delivery"] == delivery.id
    assert headers["user-agent"] == "GitHub-Hookshot/fake"
    assert headers["content-type"] == "application/json"
    verify_signature(b"s3cret", body, headers["x-hub-signature-256"])
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(fake.webhook_secret.encode(), body, headers["x-hub-signature-256"])
    payload = json.loads(body)
    assert payload["action"] == "closed"
    pr = payload["pull_request"]
    assert (pr["number"], pr["state"], pr["merged"]) == (pull.number, "closed", True)
    assert (pr["head"]["ref"], pr["base"]["ref"], pr["user"]["login"]) == (
        "feature",
        "main",
        "alice",
    )
    assert pr["html_url"] == pull.url
    assert payload["repository"]["full_name"] == REPO
    assert payload["installation"]["id"] == next(iter(fake.state.data.installations))
    assert payload["sender"]["login"] == "acme"
    # The merge is a real merge commit on main.
    main = fake.branch_sha(REPO, "main")
    assert main == pr["merge_commit_sha"]
    parents = git(
        "--git-dir", str(fake.bare_path(REPO)), "rev-list", "--parents", "-n1", "main"
    ).stdout.split()
    assert parents[2] == fake.branch_sha(REPO, "feature")


def test_close_delivers_merged_false_and_redelivery_keeps_the_id(
    fake: FakeGitHub, receiver: Receiver
) -> None:
    fake.commit(REPO, "feature", {"f.txt": "f\n"})
    alice = fake.user_token("alice")
    response = httpx.post(
        f"{fake.api_url}/repos/acme/widgets/pulls",
        headers={"Authorization": f"token {alice}"},
        json={"title": "T", "head": "feature", "base": "main"},
    )
    assert response.status_code == 201, response.text
    fake.subscribe_webhooks(receiver.url)
    closed = fake.close_pull(REPO, 1, by="alice")
    assert closed is not None
    assert closed.payload["pull_request"]["merged"] is False
    assert closed.payload["sender"]["login"] == "alice"
    again = fake.redeliver(closed.id)
    assert (again.id, again.body, again.redelivery) == (closed.id, closed.body, True)
    first, second = receiver.received[-2:]
    assert first[0]["x-github-delivery"] == second[0]["x-github-delivery"] == closed.id
    assert first[1] == second[1]
    verify_signature(fake.webhook_secret.encode(), second[1], second[0]["x-hub-signature-256"])
    assert [d.redelivery for d in fake.deliveries] == [False, True]


def test_an_unreachable_receiver_is_recorded(fake: FakeGitHub) -> None:
    fake.commit(REPO, "feature", {"f.txt": "f\n"})
    fake.subscribe_webhooks("http://127.0.0.1:9/hook")
    httpx.post(
        f"{fake.api_url}/repos/acme/widgets/pulls",
        headers={"Authorization": f"token {fake.user_token('alice')}"},
        json={"title": "T", "head": "feature", "base": "main"},
    ).raise_for_status()
    [delivery] = fake.wait_for_deliveries(event="pull_request")
    assert delivery.status_code is None
    assert delivery.error is not None
    assert "Connect" in delivery.error


# ---------------------------------------------------------------------- persistence and control


def test_state_and_repos_survive_a_restart(origin: Path, tmp_path: Path) -> None:
    data = tmp_path / "gh"
    with FakeGitHub(data) as first:
        first.add_user("alice")
        first.create_repo(REPO, source=origin, collaborators={"alice": "admin"})
        inst = first.add_installation([REPO])
        token = first.user_token("alice")
        key = first.app_private_key_pem()
        main = first.branch_sha(REPO, "main")
    assert (data / "state.json").stat().st_mode & 0o777 == 0o600
    with FakeGitHub(data) as second:
        assert second.app_private_key_pem() == key
        assert second.branch_sha(REPO, "main") == main
        assert next(iter(second.state.data.installations)) == inst
        response = httpx.get(f"{second.api_url}/user", headers={"Authorization": f"token {token}"})
        assert response.json()["login"] == "alice"


def test_control_endpoints(fake: FakeGitHub, origin: Path, receiver: Receiver) -> None:
    base = f"{fake.url}/_fake"
    assert httpx.post(f"{base}/users", json={"login": "dave"}).status_code == 200
    created = httpx.post(
        f"{base}/repos",
        json={"full_name": "dave/tool", "source": str(origin), "collaborators": {"alice": "push"}},
    )
    assert created.status_code == 200, created.text
    assert httpx.post(f"{base}/installations", json={"repos": ["dave/tool"]}).json()["id"] > 0
    token = httpx.post(f"{base}/user-tokens", json={"login": "dave"}).json()["token"]
    assert (
        httpx.get(f"{fake.api_url}/user", headers={"Authorization": f"token {token}"}).json()[
            "login"
        ]
        == "dave"
    )
    assert httpx.post(f"{base}/webhooks", json={"url": receiver.url}).json() == {"ok": True}
    state = httpx.get(f"{base}/state").json()
    assert state["webhook_url"] == receiver.url
    assert {r["owner"] + "/" + r["name"] for r in state["repos"]} == {REPO, "dave/tool"}
    assert httpx.post(f"{base}/users", json={"login": "dave"}).status_code == 400
    assert httpx.get(f"{base}/requests").json()  # the API calls above were logged
    assert not any(r.path.startswith("/_fake") for r in fake.requests)


@contextlib.contextmanager
def github_server_cli(args: list[str], cwd: Path) -> Iterator[dict[str, str]]:
    """Run ``openinspect testing github-server ARGS`` in ``cwd`` until it printed its settings;
    yield them, then stop it with Ctrl-C (it must exit 0)."""
    with fake_server_cli(
        "github-server", args, "OPENINSPECT_GITHUB__", cwd, start_timeout_s=CLI_START_TIMEOUT_S
    ) as (env, _printed):
        yield env


def settings_from(env: dict[str, str]) -> GitHubSettings:
    installation = env.get("OPENINSPECT_GITHUB__INSTALLATION_ID")
    return GitHubSettings(
        web_url=env["OPENINSPECT_GITHUB__WEB_URL"],
        app_id=int(env["OPENINSPECT_GITHUB__APP_ID"]),
        app_private_key_path=Path(env["OPENINSPECT_GITHUB__APP_PRIVATE_KEY_PATH"]),
        installation_id=int(installation) if installation else None,
        client_id=env["OPENINSPECT_GITHUB__CLIENT_ID"],
        client_secret=env["OPENINSPECT_GITHUB__CLIENT_SECRET"],
        webhook_secret=env["OPENINSPECT_GITHUB__WEBHOOK_SECRET"],
    )


def test_cli_prints_settings_that_work(origin: Path, tmp_path: Path) -> None:
    data = tmp_path / "gh"
    args = ["--port", "0", "--data", str(data), "--repo", f"{REPO}={origin}", "--user", "alice"]
    with github_server_cli(args, tmp_path) as env:
        key_path = Path(env["OPENINSPECT_GITHUB__APP_PRIVATE_KEY_PATH"])
        assert key_path.parent == data
        assert key_path.stat().st_mode & 0o777 == 0o600
        settings = settings_from(env)
        assert settings.installation_id is not None

        async def check() -> None:
            async with GitHub(settings) as gh:
                assert await gh.installation_repos() == [REF]
                await gh.installation_token(REF)  # the installation is on the repo's owner
                device = await gh.start_device_flow()
                assert device.user_code

        asyncio.run(check())


def doc_command(doc: Path, prefix: str) -> list[str]:
    """The arguments of the one command in ``doc``'s ``sh`` blocks that starts with ``prefix``."""
    blocks = re.findall(r"```sh\n(.*?)```", doc.read_text(), re.DOTALL)
    [command] = [line for b in blocks for line in b.splitlines() if line.startswith(prefix)]
    return shlex.split(command)[len(shlex.split(prefix)) :]


def test_the_documented_command_mints_a_repo_token(origin: Path) -> None:
    """docs/github.md's example, as written, run inside a git checkout: the settings it prints
    mint a token for the repo it imported (the App is installed on the repo's owner)."""
    args = doc_command(ROOT / "docs" / "github.md", "openinspect testing github-server")
    assert "--repo" in args and "acme/widgets=." in args
    # The documented port, or a free one if it is taken (other tests run alongside).
    port = args.index("--port") + 1
    args[port] = "0"
    checkout = origin.parent / "work"
    with github_server_cli(args, checkout) as env:
        assert Path(env["OPENINSPECT_GITHUB__APP_PRIVATE_KEY_PATH"]).is_relative_to(
            checkout / "fake-github"
        )

        async def check() -> None:
            async with GitHub(settings_from(env)) as gh:
                token = await gh.installation_token(RepoRef("acme", "widgets"))
                assert token.token
                assert await gh.installation_repos() == [RepoRef("acme", "widgets")]

        asyncio.run(check())
