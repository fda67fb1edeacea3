"""Helpers for end-to-end tests: talk to a real server like a client would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from openinspect.cli.client import Client, Target
from openinspect.domain.events import EPHEMERAL_TYPES
from openinspect.testing.server import ServerProcess

Event = dict[str, Any]


def client_for(server: ServerProcess) -> Client:
    return Client(Target(server.url, server.token))


def finished(prompt_id: str) -> Callable[[Event], bool]:
    return lambda e: e["type"] == "prompt-finished" and e.get("prompt_id") == prompt_id


async def collect(
    client: Client,
    session_id: str,
    until: Callable[[Event], bool],
    *,
    since_seq: int | None = 0,
    timeout_s: float = 60.0,
    with_deltas: bool = False,
) -> list[Event]:
    """Events from a session's WebSocket until ``until`` matches (inclusive)."""
    out: list[Event] = []
    ws = await client.connect(session_id, since_seq=since_seq)
    async with ws, asyncio.timeout(timeout_s):
        async for raw in ws:
            message = json.loads(raw)
            batch = (
                message["events"]
                if message["type"] == "subscribed"
                else ([message["event"]] if message["type"] == "event" else [])
            )
            for event in batch:
                if event["type"] in EPHEMERAL_TYPES and not with_deltas:
                    continue
                out.append(event)
                if until(event):
                    return out
    raise AssertionError("socket closed before the expected event")


async def start_session(client: Client, origin: str, prompt: str, **extra: Any) -> tuple[str, str]:
    created = await client.create_session(repo=origin, prompt=prompt, **extra)
    return created["session"]["id"], created["prompt"]["id"]


def durable(events: list[Event]) -> list[Event]:
    return [e for e in events if e["type"] not in EPHEMERAL_TYPES]
