"""Hostile WebSocket clients: every malformed frame gets an ``error`` message (or a documented
close code), the socket keeps serving, and the server logs no traceback; frames go out as UTF-8;
a client that stops reading is cut off within the send timeout."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import socket
import struct
from pathlib import Path

import pytest

from openinspect.settings import SessionSettings
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.security.conftest import Live, close_code, live_settings, recv_json, running

DEEP = "[" * 100_000 + "]" * 100_000
MALFORMED: tuple[str | bytes, ...] = (
    "[1, 2, 3]",
    '"just a string"',
    "42",
    "null",
    "{not json",
    b"\x00\x01binary",
    DEEP,
    '{"type": "history", "before_seq": ' + "9" * 5000 + "}",
    '{"type": "history", "before_seq": 99999999999999999999999}',
    '{"type": "history", "before_seq": 1.5}',
    '{"type": "history", "before_seq": NaN}',
    '{"type": "history", "before_seq": 1e999}',
    '{"type": "history", "before_seq": true}',
    '{"type": "history", "before_seq": 5, "limit": -1}',
    '{"type": "prompt", "content": {"nested": [1]}}',
    '{"type": "prompt"}',
    '{"type": "cancel-prompt", "prompt_id": 7}',
    '{"type": "presence", "status": "dancing"}',
    '{"type": "subscribe", "token": "x"}',
    '{"type": "no-such-type"}',
    '{"type": ["list"]}',
    '{"no": "type"}',
    "x" * 1_500_000,
)


@pytest.fixture(autouse=True)
def _tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not bad, [r.getMessage() for r in bad]


async def test_each_malformed_frame_gets_an_error_and_the_socket_lives_on(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    _, ada = await live.member("ada")
    session = await live.session(ada)
    async with live.socket(session["id"], await live.ws_token(ada, session["id"])) as ws:
        for frame in MALFORMED:
            await ws.send(frame)
            answer = await recv_json(ws)
            assert answer["type"] == "error", (frame[:60], answer)
            assert answer["code"] == "invalid_input", (frame[:60], answer)
            # Nothing of the frame is quoted back.
            assert "9999" not in answer["message"] and "dancing" not in answer["message"]
            await ws.send(json.dumps({"type": "ping"}))
            assert (await recv_json(ws))["type"] == "pong"
    _no_traceback(caplog)


async def test_malformed_frames_before_subscribe(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    _, ada = await live.member("ada")
    session = await live.session(ada)
    async with live.socket(session["id"]) as ws:
        for frame in ("[]", b"\xff", DEEP, '{"type": "prompt", "content": "x"}'):
            await ws.send(frame)
            answer = await recv_json(ws)
            assert (answer["type"], answer["code"]) == ("error", "invalid_input")
        # Tokens that are no tokens: non-ASCII, not base64, huge, wrong types.
        for token in ("tökén.sïg", "é" * 100, "a.b", "bm90IGpzb24.c2ln", "."):
            async with live.socket(session["id"]) as bad:
                await bad.send(
                    json.dumps({"type": "subscribe", "token": token}, ensure_ascii=False)
                )
                assert await close_code(bad) == 4001, token[:20]
        for token in (12, None, ["x"], "x" * 3000):  # not a token at all: an error, no close
            async with live.socket(session["id"]) as bad:
                await bad.send(json.dumps({"type": "subscribe", "token": token}))
                assert (await recv_json(bad))["code"] == "invalid_input"
    _no_traceback(caplog)


async def test_a_frame_over_the_server_limit_closes_with_1009(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    _, ada = await live.member("ada")
    session = await live.session(ada)
    async with live.socket(session["id"], await live.ws_token(ada, session["id"])) as ws:
        await ws.send("x" * (3 * 1024 * 1024))
        assert await close_code(ws) == 1009
    _no_traceback(caplog)


async def test_frames_are_utf8_not_ascii_escaped(live: Live) -> None:
    _, ada = await live.member("ada")
    session = await live.session(ada)
    text = "naïve café — 日本語 " * 1000
    async with live.socket(session["id"], await live.ws_token(ada, session["id"])) as ws:
        await ws.send(json.dumps({"type": "prompt", "content": text}, ensure_ascii=False))
        raw = ""
        while "prompt-queued" not in raw:
            raw = str(await asyncio.wait_for(ws.recv(), 10))
        assert "\\u" not in raw and text in raw
        assert len(raw.encode()) < len(json.dumps(text).encode())  # smaller than escaped


def _masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    assert len(payload) < 65536
    mask = os.urandom(4)
    header = bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(payload))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _hung_client(url: str, path: str, token: str) -> socket.socket:
    """A WebSocket client on a raw socket with a tiny receive buffer that, once subscribed,
    never reads again (a hung or hostile client)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += await loop.sock_recv(sock, 1)
    assert response.startswith(b"HTTP/1.1 101"), response
    await loop.sock_sendall(
        sock, _masked_text_frame(json.dumps({"type": "subscribe", "token": token}))
    )
    return sock


async def test_a_client_that_stops_reading_is_cut_off(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    settings = live_settings(
        tmp_path, llm, sessions=SessionSettings(ws_send_timeout_s=1.0, ws_auth_recheck_s=60)
    )
    async with running(settings, origin) as live:
        _, ada = await live.member("ada")
        session = await live.session(ada)
        token = await live.ws_token(ada, session["id"])
        path = f"/api/sessions/{session['id']}/ws"
        sock = await _hung_client(live.url, path, token)
        presence = live.plane.manager.presence
        try:
            async with asyncio.timeout(10):
                while not await presence.snapshot(session["id"]):
                    await asyncio.sleep(0.05)
            blob = "z" * 500_000
            for _ in range(24):  # ~12 MB of broadcasts the client never reads
                await live.plane.manager.deps.events.publish_presence(
                    session["id"], [{"name": blob}]
                )
                await asyncio.sleep(0)
            async with asyncio.timeout(15):
                while await presence.snapshot(session["id"]):
                    await asyncio.sleep(0.1)  # the server let go of the connection
            # And dropped it: reading what is left ends in EOF or a reset, not 12 MB.
            received = 0
            loop = asyncio.get_running_loop()
            with contextlib.suppress(ConnectionResetError):
                async with asyncio.timeout(15):
                    while chunk := await loop.sock_recv(sock, 65536):
                        received += len(chunk)
            assert received < 10_000_000
        finally:
            sock.close()


async def test_the_cli_client_takes_large_non_ascii_frames(live: Live) -> None:
    """9 MB of non-ASCII text: ASCII-escaped it was an 18 MB frame, over the CLI's 16 MiB
    limit; as UTF-8 it stays 9 MB and the CLI's own client reads it."""
    from openinspect.cli.client import Client, Target

    _, ada = await live.member("ada")
    session = await live.session(ada)
    text = "日本語のテキスト" * 375_000  # 3 M characters: 9 MB of UTF-8, 18 MB escaped
    raw = json.dumps({"kind": "event", "event": {"type": "warning", "seq": 10**6, "message": text}})
    async with Client(Target(live.url, ada)) as client:
        ws = await client.connect(session["id"])
        try:
            assert json.loads(await ws.recv())["type"] == "subscribed"
            await live.plane.bus.publish(f"session:{session['id']}", raw)
            async with asyncio.timeout(20):
                while True:
                    frame = await ws.recv()
                    if isinstance(frame, str) and text in frame:
                        break
            assert len(frame.encode()) < 16 * 1024 * 1024
        finally:
            await ws.close()


async def test_invalid_utf8_in_a_text_frame_closes_with_1007_without_a_traceback(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    _, ada = await live.member("ada")
    session = await live.session(ada)
    token = await live.ws_token(ada, session["id"])
    sock = await _hung_client(live.url, f"/api/sessions/{session['id']}/ws", token)
    loop = asyncio.get_running_loop()
    try:
        payload = b'{"type": "ping", "x": "\xff\xfe"}'
        mask = os.urandom(4)
        frame = bytes([0x81, 0x80 | len(payload)]) + mask
        frame += bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        await loop.sock_sendall(sock, frame)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            async with asyncio.timeout(10):
                while chunk := await loop.sock_recv(sock, 65536):
                    received += chunk
        # The close frame: opcode 8, then the code 1007 (invalid frame payload data).
        assert b"\x88" in received and struct.pack("!H", 1007) in received
    finally:
        sock.close()
    _no_traceback(caplog)


async def test_a_client_that_falls_behind_is_cut_off_without_holding_up_the_others(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path
) -> None:
    """A client that stops reading fills its own queue and is cut off long before the send
    timeout, while another client of the session gets every event, in order, meanwhile."""
    settings = live_settings(
        tmp_path,
        llm,
        sessions=SessionSettings(ws_send_timeout_s=120, ws_auth_recheck_s=60, ws_queue_frames=20),
    )
    async with running(settings, origin) as live:
        _, ada = await live.member("ada")
        session = await live.session(ada)
        sid = session["id"]
        token = await live.ws_token(ada, sid)
        hung = await _hung_client(live.url, f"/api/sessions/{sid}/ws", token)
        presence = live.plane.manager.presence
        try:
            async with live.socket(sid, await live.ws_token(live.admin_token, sid)) as reader:
                async with asyncio.timeout(10):  # the admin and ada
                    while len(await presence.snapshot(sid)) < 2:
                        await asyncio.sleep(0.05)
                pad = "p" * 16_000
                seqs = range(10**6, 10**6 + 400)  # 6 MB: more than the hung socket buffers
                got: list[int] = []
                async with asyncio.timeout(60):
                    for seq in seqs:  # in step with the reader, which never falls behind
                        event = {"type": "warning", "seq": seq, "message": pad}
                        await live.plane.bus.publish(
                            f"session:{sid}", json.dumps({"kind": "event", "event": event})
                        )
                        while not got or got[-1] != seq:
                            frame = json.loads(await reader.recv())
                            if frame["type"] == "event":
                                got.append(frame["event"]["seq"])
                assert got == list(seqs)
                async with asyncio.timeout(15):  # the hung client was let go, not waited for
                    while len(await presence.snapshot(sid)) > 1:
                        await asyncio.sleep(0.1)
        finally:
            hung.close()


@pytest.mark.parametrize("compression", [False, True])
async def test_permessage_deflate_is_offered_only_when_configured(
    tmp_path: Path, llm: ScriptedLLMServer, origin: Path, compression: bool
) -> None:
    """Off by default (per connection it costs more CPU in fan-out than it saves on a fast
    network: ``bench/fanout.py``), on with ``server.ws_compression``."""
    from openinspect.settings import ServerSettings

    settings = live_settings(
        tmp_path, llm, server=ServerSettings(port=0, ws_compression=compression)
    )
    async with running(settings, origin) as live:
        _, ada = await live.member("ada")
        session = await live.session(ada)
        async with live.socket(session["id"], await live.ws_token(ada, session["id"])) as ws:
            assert ws.response is not None
            offered = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
            assert ("permessage-deflate" in offered) is compression
