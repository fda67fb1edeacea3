"""Live command output (``tool-output-delta``) goes only where the session's other events go:
over the session's own socket to people who may see it. Another member gets none of it, on
their own session's socket or with a validly signed token for this session."""

from __future__ import annotations

import asyncio
import json

from openinspect.testing.llm_server import ScriptedLLMServer
from tests.security.conftest import Live, close_code
from tests.security.test_ws_access import forge

SECRET_LINE = "bob-private-output"
COMMAND = f"for i in 1 2 3 4; do echo {SECRET_LINE}-$i; sleep 0.3; done"


async def test_live_output_reaches_the_sessions_people_only(
    live: Live, llm: ScriptedLLMServer
) -> None:
    ada_id, ada = await live.member("ada")
    _, bob = await live.member("bob")
    mine = await live.session(ada)
    theirs = await live.session(bob)
    llm.reset(
        {
            "turns": [
                {"tool_calls": [{"name": "bash", "args": {"command": COMMAND}}]},
                {"text": "done"},
            ]
        }
    )
    ada_found = await live.plane.store.users.lookup(ada)
    assert ada_found is not None
    forged = forge(live.plane, theirs["id"], ada_id, ada_found.token_id)

    async with (
        live.socket(theirs["id"], await live.ws_token(bob, theirs["id"])) as owner,
        live.socket(mine["id"], await live.ws_token(ada, mine["id"])) as other,
        live.socket(theirs["id"]) as intruder,
    ):
        made = await live.call(
            bob, "POST", f"/api/sessions/{theirs['id']}/prompts", json={"content": "go"}
        )
        assert made.status_code == 202, made.text
        seen: list[dict[str, object]] = []
        async with asyncio.timeout(60):
            while not any(e.get("type") == "prompt-finished" for e in seen):
                frame = json.loads(await owner.recv())
                if frame["type"] == "event":
                    seen.append(frame["event"])
            # A signed token for Bob's session, while it streams: refused like any other.
            await intruder.send(json.dumps({"type": "subscribe", "token": forged}))
            assert await close_code(intruder) == 4004
        deltas = [e for e in seen if e["type"] == "tool-output-delta"]
        assert deltas and SECRET_LINE in "".join(str(e["data"]) for e in deltas)

        # Ada's socket on her own session got nothing of Bob's output.
        other_frames: list[str] = []
        with_timeout = asyncio.wait_for(other.recv(), 0.5)
        try:
            while True:
                other_frames.append(str(await with_timeout))
                with_timeout = asyncio.wait_for(other.recv(), 0.5)
        except TimeoutError:
            pass
        assert not [f for f in other_frames if SECRET_LINE in f or "tool-output-delta" in f]
