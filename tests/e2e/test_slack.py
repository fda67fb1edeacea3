"""End to end with Slack configured: a real server process (SQLite, real bwrap boxes), the fake
Slack on loopback, the scripted model. The box never sees a Slack secret; a server killed between
two status edits and started again leaves the thread correct: one status message in its final
state and one final message."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from openinspect.settings import Settings
from openinspect.store import Store
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.server import ServerProcess
from openinspect.testing.slack import FakeSlack
from tests.conftest import server_env
from tests.e2e.helpers import client_for, collect, finished
from tests.integrations.slack.helpers import CHANNEL, TEAM, USER, keyed, shown

# Built at run time so that no probe's command line carries them whole.
BOT_TOKEN = f"xoxb-e2e-{secrets.token_hex(12)}"
SIGNING_SECRET = f"sign-e2e-{secrets.token_hex(12)}"
APP_TOKEN = f"xapp-e2e-{secrets.token_hex(12)}"
WAIT_S = 90.0


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, app_token=APP_TOKEN) as fake:
        fake.add_user(USER, name="alice", email="alice@example.com")
        fake.add_channel(CHANNEL, name="eng")
        yield fake


def slack_env(llm: ScriptedLLMServer, slack: FakeSlack) -> dict[str, str]:
    return server_env(
        llm,
        OPENINSPECT_SLACK__BOT_TOKEN=BOT_TOKEN,
        OPENINSPECT_SLACK__SIGNING_SECRET=SIGNING_SECRET,
        OPENINSPECT_SLACK__APP_TOKEN=APP_TOKEN,
        OPENINSPECT_SLACK__API_URL=slack.api_url,
        OPENINSPECT_SLACK__STATUS_INTERVAL_S="0.3",
    )


async def slack_session(
    server: ServerProcess, slack: FakeSlack, origin: Path, client: Any
) -> tuple[str, str]:
    """A session tied to a thread of the fake Slack, as the inbound side makes it: the session
    (REST here), then its thread row written into the server's store."""
    ts = await slack.apost_user_message(CHANNEL, USER, "<@UBOT> do the thing")
    created = await client.create_session(repo=str(origin))
    session_id = created["session"]["id"]
    store = await Store.open(Settings(home=server.home).resolved_database_url, run_migrations=False)
    try:
        async with store.engine.begin() as conn:
            assert await store.slack_threads.create(
                conn,
                session_id=session_id,
                team_id=TEAM,
                channel_id=CHANNEL,
                thread_ts=ts,
                channel_type="channel",
                slack_user_id=USER,
            )
    finally:
        await store.close()
    return session_id, ts


async def until(check: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    try:
        async with asyncio.timeout(timeout_s):
            while not (found := check()):
                await asyncio.sleep(0.05)
            return found
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def bots(slack: FakeSlack, ts: str) -> list[Any]:
    return [m for m in slack.thread(CHANNEL, ts) if m.bot_id]


@pytest.mark.bwrap
async def test_the_box_never_sees_a_slack_secret(
    tmp_path: Path, llm: ScriptedLLMServer, slack: FakeSlack, origin: Path
) -> None:
    # The patterns reach grep on its stdin, built from halves: no argv and no file holds them.
    halves = " ".join(f"{s[:10]} {s[10:]}" for s in (BOT_TOKEN, SIGNING_SECRET, APP_TOKEN))
    patterns = f"printf '%s%s\\n' {halves}"
    probes = [
        "env",
        # Not the loop's status: the other probes run at the same time, and one whose process
        # ends between the glob and its read makes the last ``tr`` fail.
        "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done 2>/dev/null; "
        "echo environ-done",
        # Every file the box can see, for any of the three: but the kernel's pseudo files and
        # /usr, the host's read-only system tree (no server writes there; reading it all is
        # most of this test's time), whose absence of host files the containment suite checks.
        f"{patterns} | grep -rlsF --devices=skip --exclude-dir=proc --exclude-dir=sys "
        "--exclude-dir=usr -f - /"
        "; echo grep-done",
        f"{patterns} | grep -lsF -f - /proc/[0-9]*/environ /proc/[0-9]*/cmdline; echo proc-done",
        f"{patterns} | wc -l",
    ]
    llm.reset(
        {
            "turns": [
                {
                    "tool_calls": [
                        {"name": "bash", "args": {"command": c, "timeout_s": 600}} for c in probes
                    ]
                },
                {"text": "done"},
            ]
        }
    )
    with ServerProcess(tmp_path / "home", env=slack_env(llm, slack)) as server:
        async with client_for(server) as client:
            session_id, _ts = await slack_session(server, slack, origin, client)
            asked = await client.post_prompt(session_id, content="probe")
            events = await collect(client, session_id, finished(asked["id"]), timeout_s=600)
        log = server.log()
    command = {e["call_id"]: e["args"]["command"] for e in events if e["type"] == "tool-call"}
    by_command = {command[e["call_id"]]: e["output"] for e in events if e["type"] == "tool-result"}
    env, environs, fs_grep, proc_grep, count = (by_command[c] for c in probes)
    assert count.startswith("3")  # the patterns were built
    assert "OPENINSPECT_CLONE_SOURCE" in env  # the probes ran, and read other environs
    assert "environ-done" in environs and "OPENINSPECT_WORKSPACE=" in environs
    for found, marker in ((fs_grep, "grep-done"), (proc_grep, "proc-done")):
        assert marker in found
        assert [line for line in found.splitlines() if line.startswith("/")] == []
    everything = "\n".join(by_command.values())
    for secret in (BOT_TOKEN, SIGNING_SECRET, APP_TOKEN):
        assert secret not in everything
        assert secret not in log
    assert "OPENINSPECT_SLACK" not in everything


async def test_a_server_killed_between_two_status_edits_leaves_the_thread_correct(
    tmp_path: Path, llm: ScriptedLLMServer, slack: FakeSlack, origin: Path
) -> None:
    llm.reset(
        {
            "turns": [
                {"tool_calls": [{"name": "bash", "args": {"command": "echo one"}}]},
                {
                    "tool_calls": [{"name": "bash", "args": {"command": "sleep 600"}}],
                    "delay_ms": 200,
                },
                {"text": "never reached"},
            ]
        }
    )
    home = tmp_path / "home"
    env = slack_env(llm, slack) | {"OPENINSPECT_SANDBOX__PROVIDER": "process"}
    first = ServerProcess(home, env=env).start()
    try:
        async with client_for(first) as client:
            session_id, ts = await slack_session(first, slack, origin, client)
            asked = await client.post_prompt(session_id, content="a long job")
            status_key = f"status:{session_id}"
            # Killed while the slow step runs, after the status showed an earlier step.
            await until(
                lambda: [m for m in keyed(bots(slack, ts), status_key) if "sleep 600" in shown(m)],
                "the status at the slow step",
            )
            edits_before = keyed(bots(slack, ts), status_key)[0].edits
    finally:
        first.kill()
    assert edits_before >= 2
    with ServerProcess(home, env=env) as second:
        async with client_for(second) as client:
            history = await collect(client, session_id, finished(asked["id"]))
            assert history[-1]["status"] == "interrupted"
        [final] = await until(
            lambda: keyed(bots(slack, ts), f"final:{asked['id']}"), "the final message"
        )
        [status] = await until(
            lambda: [m for m in keyed(bots(slack, ts), status_key) if "Interrupted" in shown(m)],
            "the status in its final state",
        )
    assert [m.ts for m in bots(slack, ts)] == [status.ts, final.ts]
    assert "Interrupted" in shown(final) and "sleep 600" not in shown(status)
