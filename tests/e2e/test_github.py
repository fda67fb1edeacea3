"""End to end with GitHub: a real server process, the fake GitHub over real HTTP (githubkit and
git unchanged), real bwrap sandboxes pushing through the git proxy, the scripted LLM."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from openinspect.cli.client import ApiError, Client, Target
from openinspect.scm.webhooks import sign
from openinspect.testing.github import FakeGitHub
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess
from tests.cli.test_cli import cli
from tests.conftest import server_env
from tests.e2e.helpers import collect, finished

pytestmark = pytest.mark.e2e
REPO = "acme/widgets"
TOKEN_TTL_S = 4.0


@pytest.fixture
def fake(origin: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub() as gh:
        gh.add_user("alice", name="Alice Liddell", emails=[("alice@acme.test", True, True)])
        gh.add_user("bob", name="Bob")
        gh.add_user("mallory", name="Mallory")
        gh.create_repo(REPO, source=origin, collaborators={"alice": "push"})
        gh.add_installation([REPO])
        gh.set_installation_token_ttl(TOKEN_TTL_S)
        yield gh


@pytest.fixture
def gh_server(tmp_path: Path, llm: ScriptedLLMServer, fake: FakeGitHub) -> Iterator[ServerProcess]:
    key = tmp_path / "app.pem"
    key.write_text(fake.app_private_key_pem("pkcs8"))
    key.chmod(0o600)
    env = server_env(
        llm,
        OPENINSPECT_GITHUB__WEB_URL=fake.url,
        OPENINSPECT_GITHUB__APP_ID=str(fake.app_id),
        OPENINSPECT_GITHUB__APP_PRIVATE_KEY_PATH=str(key),
        OPENINSPECT_GITHUB__CLIENT_ID=fake.client_id,
        OPENINSPECT_GITHUB__CLIENT_SECRET=fake.client_secret,
        OPENINSPECT_GITHUB__WEBHOOK_SECRET=fake.webhook_secret,
        # Tokens live 4 s here; replace them when less than 1 s is left.
        OPENINSPECT_GITHUB__TOKEN_REFRESH_MARGIN_S="1",
        OPENINSPECT_AUTH__ALLOWED_USERS=json.dumps(["alice", "bob"]),
    )
    with ServerProcess(tmp_path / "home", env=env) as proc:
        fake.subscribe_webhooks(f"{proc.url}/webhooks/github")
        yield proc


def sign_in(server: ServerProcess, fake: FakeGitHub, login: str) -> tuple[str | None, str]:
    """The browser's OAuth web flow; returns (token, where it ended)."""
    fake.set_oauth_user(login)
    with httpx.Client(base_url=server.url) as browser:
        start = browser.get("/auth/github/login", params={"next": "/"})
        assert start.status_code == 302, start.text
        at_github = httpx.get(start.headers["location"])
        assert at_github.status_code == 302, at_github.text
        back = urlsplit(at_github.headers["location"])
        done = browser.get(f"{back.path}?{back.query}")
    assert done.status_code == 302, done.text
    location = urlsplit(done.headers["location"])
    token = parse_qs(location.fragment).get("token", [None])[0]
    return token, f"{location.path}?{location.query}"


def repo_url(fake: FakeGitHub) -> str:
    return f"{fake.url}/{REPO}"


def outputs(events: list[dict[str, Any]], prompt_id: str) -> list[str]:
    return [
        e["output"] for e in events if e["type"] == "tool-result" and e["prompt_id"] == prompt_id
    ]


def bash(command: str) -> dict[str, object]:
    return {"tool_calls": [{"name": "bash", "args": {"command": command}}]}


async def test_sign_in_allowlist_and_repo_access(
    gh_server: ServerProcess, fake: FakeGitHub
) -> None:
    token, where = sign_in(gh_server, fake, "mallory")
    assert token is None and where == "/signin?error=sign_in_refused"

    bob, _ = sign_in(gh_server, fake, "bob")
    assert bob is not None
    async with Client(Target(gh_server.url, bob)) as client:
        me = await client.request("GET", "/api/me")
        assert (me["github_login"], me["role"]) == ("bob", "member")
        assert me["git_email"].endswith("+bob@users.noreply.127.0.0.1")
        with pytest.raises(ApiError) as refused:
            await client.create_session(repo=repo_url(fake))
    assert (refused.value.http_status, refused.value.api_code) == (403, "repo_access_denied")
    async with Client(Target(gh_server.url, gh_server.token)) as admin:
        assert (await admin.request("GET", "/api/sessions"))["sessions"] == []


async def test_git_through_the_proxy_pull_requests_and_webhooks(
    gh_server: ServerProcess, fake: FakeGitHub, llm: ScriptedLLMServer
) -> None:
    alice, _ = sign_in(gh_server, fake, "alice")
    assert alice is not None
    commit = 'git -c user.name=Agent -c user.email=agent@example.com commit -qam "agent work"'
    llm.reset(
        {
            "turns": [
                bash(f"echo more >> calc.py && {commit} && git push 2>&1; echo exit=$?"),
                bash("git push origin HEAD:main 2>&1; echo exit=$?"),
                bash("git tag v9 && git push origin v9 2>&1; echo exit=$?"),
                bash(  # history rewritten: a force-push that is no fast-forward
                    "git push --force origin "
                    "$(git commit-tree 'HEAD^{tree}' -m rewritten):refs/heads/main 2>&1; "
                    "echo exit=$?"
                ),
                {"text": "Pushed what I could."},
            ]
        }
    )
    async with Client(Target(gh_server.url, alice)) as client:
        main_before = fake.branch_sha(REPO, "main")
        created = await client.create_session(repo=repo_url(fake), prompt="Push it")
        sid, pid = created["session"]["id"], created["prompt"]["id"]
        branch = created["session"]["branch"]
        first = await collect(client, sid, finished(pid), timeout_s=120)

        # The agent's plain `git push` landed on GitHub; the rest were refused and said why.
        push, to_main, tag, force = outputs(first, pid)
        assert "exit=0" in push, push
        assert fake.branch_sha(REPO, branch) is not None
        assert "exit=1" in to_main and "main is the base branch" in to_main, to_main
        assert "remote rejected" in to_main
        assert "tag pushes are not allowed" in tag and "exit=1" in tag, tag
        assert "main is the base branch" in force and "exit=1" in force, force
        assert "v9" not in fake.branches(REPO)
        pushes = [e for e in first if e["type"] == "git-push"]
        assert pushes and all(p["branch"] == branch for p in pushes)
        assert [e["code"] for e in first if e["type"] == "warning"].count("push_refused") == 3

        # Tokens expire after 4 s: wait them out, then push again without the agent noticing.
        minted_before = len(fake.requests_to("POST", r"/access_tokens$"))
        time.sleep(TOKEN_TTL_S + 0.5)
        llm.reset(
            {
                "turns": [
                    bash(f"echo again >> calc.py && {commit} && git push 2>&1; echo exit=$?"),
                    {"text": "Pushed again."},
                ]
            }
        )
        second = await client.post_prompt(sid, content="Again")
        events = await collect(client, sid, finished(second["id"]), timeout_s=120)
        (again,) = outputs(events, second["id"])
        assert "exit=0" in again, again
        assert len(fake.requests_to("POST", r"/access_tokens$")) > minted_before

        # No GitHub token anywhere in the box: environment, git config, processes, files.
        tokens = list(fake.state.data.installation_tokens)
        assert len(tokens) >= 2
        llm.reset(
            {
                "turns": [
                    bash(
                        "env; git config --list --show-origin; ps -eo args; "
                        "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'; "
                        "ls -la ~ /tmp; cat ~/.git-credentials ~/.gitconfig 2>&1"
                    ),
                    # Every place in the box that is not a read-only copy of the host's own
                    # system (/usr, /opt, /lib…: the server never writes there, and reading
                    # 10+ GB of it took minutes on a cold page cache).
                    bash(
                        "grep -rlsF -e "
                        + " -e ".join(tokens)
                        + ' /workspace /tmp /home /root /etc /run /var "$HOME"; '
                        "echo searched"
                    ),
                    {"text": "Nothing found."},
                ]
            }
        )
        look = await client.post_prompt(sid, content="Look around")
        events = await collect(client, sid, finished(look["id"]), timeout_s=120)
        dump, search = outputs(events, look["id"])
        assert "remote.origin.url=http://127.0.0.1:" in dump, dump
        for secret in tokens:
            assert secret not in dump
        assert search.splitlines()[0] == "searched", search
        assert fake.branch_sha(REPO, "main") == main_before

        # The agent's tool opens the PR as alice, who asked, with her own token.
        llm.reset(
            {
                "turns": [
                    {
                        "tool_calls": [
                            {
                                "name": "create_pull_request",
                                "args": {"title": "Widgets", "body": "Tested."},
                            }
                        ]
                    },
                    {"text": "Opened."},
                ]
            }
        )
        third = await client.post_prompt(sid, content="Open a PR")
        events = await collect(client, sid, finished(third["id"]), timeout_s=120)
        (result,) = outputs(events, third["id"])
        [opened] = [e for e in events if e["type"] == "pr-opened"]
        assert f"#{opened['number']} (open)" in result, result
        [created] = fake.requests_to("POST", rf"/repos/{REPO}/pulls$")
        assert (created.auth, created.login) == ("user", "alice")
        first_pr = fake.pull(REPO, opened["number"])
        assert first_pr.title == "Widgets" and "on behalf of" not in first_pr.body

        # The CLI, as alice, updates the same PR (one PR per branch).
        shown = cli(
            "sessions",
            "pr",
            sid,
            "--title",
            "Widgets (cli)",
            "--json",
            server=gh_server,
            env={"OPENINSPECT_TOKEN": alice},
        )
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["number"] == opened["number"]
        [patched] = fake.requests_to("PATCH", rf"/repos/{REPO}/pulls/{opened['number']}$")
        assert patched.login == "alice"
        assert fake.pull(REPO, opened["number"]).title == "Widgets (cli)"

        # Closed on GitHub: the signed webhook reaches the session, and the branch is free.
        fake.close_pull(REPO, opened["number"])
        listed = await client.request("GET", f"/api/sessions/{sid}/pull-requests")
        assert [p["state"] for p in listed["pull_requests"]] == ["closed"]

        # The admin has no GitHub token: the App opens the new PR and says on whose behalf.
        async with Client(Target(gh_server.url, gh_server.token)) as admin:
            pr = await admin.request(
                "POST",
                f"/api/sessions/{sid}/pull-request",
                json={"title": "Widgets, again", "body": "Changes."},
            )
        assert (pr["opened_as"], pr["state"]) == ("app", "open")
        assert pr["number"] != opened["number"]
        assert fake.requests_to("POST", rf"/repos/{REPO}/pulls$")[-1].auth == "installation"
        body = fake.pull(REPO, pr["number"]).body
        assert "Opened by openinspect on behalf of" in body, body

        # Merged on GitHub: merged on the session, once, however often it is delivered.
        before = (await client.request("GET", f"/api/sessions/{sid}"))["session"]["last_seq"]
        fake.merge_pull(REPO, pr["number"])
        listed = await client.request("GET", f"/api/sessions/{sid}/pull-requests")
        assert [p["state"] for p in listed["pull_requests"]] == ["merged"]
        merged = [d for d in fake.deliveries if d.event == "pull_request"][-1]
        fake.redeliver(merged.id)
        page = await client.request("GET", f"/api/sessions/{sid}/events?after_seq={before}")
        updates = [e for e in page["events"] if e["type"] == "pr-updated"]
        assert [u["state"] for u in updates] == ["merged"]


async def test_webhook_signatures_and_replays(gh_server: ServerProcess, fake: FakeGitHub) -> None:
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    headers = {"X-GitHub-Event": "ping", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=gh_server.url) as http:
        missing = await http.post(
            "/webhooks/github", content=body, headers={**headers, "X-GitHub-Delivery": "d1"}
        )
        wrong = await http.post(
            "/webhooks/github",
            content=body,
            headers={
                **headers,
                "X-GitHub-Delivery": "d1",
                "X-Hub-Signature-256": sign(b"not the secret", body),
            },
        )
        good = {
            **headers,
            "X-GitHub-Delivery": "d1",
            "X-Hub-Signature-256": sign(fake.webhook_secret.encode(), body),
        }
        first = await http.post("/webhooks/github", content=body, headers=good)
        replay = await http.post("/webhooks/github", content=body, headers=good)
    for refused in (missing, wrong):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "webhook_signature_invalid"
    assert first.status_code == 202 and first.json()["outcome"] == "ignored"
    assert replay.status_code == 202 and replay.json()["outcome"] == "duplicate"
