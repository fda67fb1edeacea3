"""The server log is for operators: a user's mistake (a 4xx answer) and a client that goes away
mid-stream are answered or dropped quietly, without a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest

from openinspect.testing.llm_server import ScriptedLLMServer
from tests.security.conftest import Live

STREAMING = {
    "turns": [
        {
            "tool_calls": [
                {
                    "name": "bash",
                    "args": {"command": "for i in $(seq 40); do echo line $i; sleep 0.05; done"},
                }
            ]
        },
        {"text": "Printed."},
    ]
}
PROMPT_END_TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def _server_log(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Everything the server logs, uvicorn's own loggers included (they do not propagate to the
    root logger, where pytest captures)."""
    caplog.set_level(logging.DEBUG)
    uvicorn = logging.getLogger("uvicorn")
    uvicorn.addHandler(caplog.handler)
    yield
    uvicorn.removeHandler(caplog.handler)


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.exc_info or r.exc_text or "Traceback" in r.getMessage()
    ]


async def test_user_errors_log_no_traceback(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    _, ada = await live.member("ada")
    session = await live.session(ada)
    answers = [
        await live.call(ada, "GET", "/api/sessions/ses_missing"),
        await live.call(ada, "POST", f"/api/sessions/{session['id']}/prompts", json={}),
        await live.call(ada, "POST", "/api/sessions", json={"repo": "/no/such/repo"}),
        await live.call(
            ada,
            "POST",
            f"/api/sessions/{session['id']}/prompts",
            json={"content": "hi", "model": "nope:nothing"},
        ),
        await live.call("oi_wrong", "GET", "/api/sessions"),
        await live.call(ada, "POST", "/api/repos", json={"name": "x", "url": "/nope"}),
    ]
    assert all(400 <= a.status_code < 500 for a in answers), [a.status_code for a in answers]
    assert not tracebacks(caplog)


async def test_a_client_closing_its_websocket_mid_stream_logs_no_traceback(
    live: Live, llm: ScriptedLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    llm.reset(STREAMING)
    _, ada = await live.member("ada")
    session = await live.session(ada)
    async with live.socket(session["id"], await live.ws_token(ada, session["id"])) as ws:
        await ws.send(json.dumps({"type": "prompt", "content": "print lines"}))
        while True:  # until the command runs (more events follow while it prints)
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if frame["type"] == "event" and frame["event"]["type"] == "tool-call":
                break
        ws.transport.abort()  # gone without a closing handshake, as a dropped connection
    prompts = live.plane.store.prompts
    async with asyncio.timeout(PROMPT_END_TIMEOUT_S):
        while await prompts.unfinished(session["id"]):
            await asyncio.sleep(0.1)
    [prompt] = await prompts.for_session(session["id"])
    assert prompt.status == "success"
    assert not tracebacks(caplog)
