"""Presence through the WebSocket and the command path: a client sets only its own presence, in
its own session, whatever it puts in the frame; a command naming someone else's client changes
nothing; and one person cannot open more sockets than ``sessions.max_watchers_per_user``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from openinspect.domain.commands import SetPresence
from openinspect.errors import SessionNotFound
from openinspect.settings import SessionSettings
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.security.conftest import Live, close_code, live_settings, running

Participants = list[dict[str, Any]]


async def _presence_until(ws: ClientConnection, wanted: Callable[[Participants], bool]) -> None:
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "presence" and wanted(frame["participants"]):
                return


def _status(participants: Participants, user_id: str) -> str | None:
    return next((p["status"] for p in participants if p["user_id"] == user_id), None)


async def test_a_client_sets_only_its_own_presence_in_its_own_session(live: Live) -> None:
    ada_id, ada = await live.member("ada")
    bob_id, bob = await live.member("bob")
    admin = await live.plane.store.users.authenticate(live.admin_token)
    bob_user = await live.plane.store.users.get(bob_id)
    assert admin is not None and bob_user is not None
    hers, his = await live.session(ada), await live.session(bob)
    presence = live.plane.manager.presence
    async with (
        live.socket(hers["id"], await live.ws_token(ada, hers["id"])) as ada_ws,
        live.socket(hers["id"], await live.ws_token(live.admin_token, hers["id"])) as admin_ws,
        live.socket(his["id"], await live.ws_token(bob, his["id"])) as bob_ws,
    ):
        await _presence_until(admin_ws, lambda p: len(p) == 2)
        (ada_client,) = [
            w.client_id
            for w in await live.plane.store.presence.watchers(hers["id"])
            if w.user_id == ada_id
        ]
        aimed = {"type": "presence", "status": "idle", "client_id": ada_client}
        # The admin's socket names Ada's client: its own presence changes, not hers.
        await admin_ws.send(json.dumps({**aimed, "session_id": hers["id"]}))
        await _presence_until(ada_ws, lambda p: _status(p, admin.id) == "idle")
        assert _status(await presence.snapshot(hers["id"]), ada_id) == "active"
        # Bob's socket, on his own session, names her session and her client: his changes.
        await bob_ws.send(json.dumps({**aimed, "session_id": hers["id"]}))
        await _presence_until(bob_ws, lambda p: _status(p, bob_id) == "idle")
        assert _status(await presence.snapshot(hers["id"]), ada_id) == "active"

        # The command path itself: naming another person's client changes nothing, and a
        # session one may not see is not found, as every other command answers.
        commands = live.plane.commands
        theirs = SetPresence(session_id=hers["id"], client_id=ada_client, status="idle")
        await commands.handle(admin, theirs, origin="api")
        assert _status(await presence.snapshot(hers["id"]), ada_id) == "active"
        with pytest.raises(SessionNotFound):
            await commands.handle(bob_user, theirs, origin="api")
        assert _status(await presence.snapshot(hers["id"]), ada_id) == "active"


async def test_one_person_cannot_open_more_sockets_than_allowed(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    limits = SessionSettings(max_watchers_per_user=2, ws_auth_recheck_s=0.5)
    async with running(live_settings(tmp_path, llm, sessions=limits), origin) as live:
        _, ada = await live.member("ada")
        first, second = await live.session(ada), await live.session(ada)
        async with (
            live.socket(first["id"], await live.ws_token(ada, first["id"])),
            live.socket(second["id"], await live.ws_token(ada, second["id"])),
            live.socket(first["id"]) as third,
        ):
            token = await live.ws_token(ada, first["id"])
            await third.send(json.dumps({"type": "subscribe", "token": token}))
            assert await close_code(third) == 4029
            assert "most one person may have" in (third.close_reason or "")
        # Closed sockets free their places.
        async with live.socket(first["id"], await live.ws_token(ada, first["id"])):
            pass
