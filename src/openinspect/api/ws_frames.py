"""WebSocket frames in and out: parsing what a (possibly hostile) client sends, and encoding what
the server fans out (once per message per session: ``ws_fanout``).

Incoming: every frame either parses to a JSON object or raises ``InvalidInput`` with a message
that quotes nothing of the frame — binary frames, oversize frames, invalid JSON, ``NaN``/
``Infinity``, numbers too large to be a seq, nesting too deep to parse, non-objects. Outgoing:
UTF-8 JSON (``ensure_ascii=False``): non-ASCII text travels as itself, not as ``\\uXXXX``
escapes three times its size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from openinspect.domain.events import EPHEMERAL_TYPES
from openinspect.errors import InvalidInput

MESSAGE_MAX_CHARS = 1_000_000
MAX_SEQ = 2**62
"""Largest seq a client may name: anything above fits no database integer."""
_NUMBER_MAX_DIGITS = 32


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _NUMBER_MAX_DIGITS:
        raise ValueError("number too large")
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > _NUMBER_MAX_DIGITS * 2:
        raise ValueError("number too long")
    return float(text)


def parse_incoming(message: Mapping[str, Any]) -> dict[str, Any]:
    """A received ASGI ``websocket.receive`` message as a JSON object, or ``InvalidInput``."""
    text = message.get("text")
    if text is None:
        raise InvalidInput(
            "Binary frames are not accepted", hint="Send JSON objects as text frames"
        )
    if len(text) > MESSAGE_MAX_CHARS:
        raise InvalidInput(
            f"Message of {len(text)} characters; the limit is {MESSAGE_MAX_CHARS}",
            hint="Send long prompts through POST /api/sessions/{id}/prompts",
        )
    try:
        parsed = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
        )
    except RecursionError:
        raise InvalidInput("The message is nested too deeply") from None
    except ValueError:
        raise InvalidInput(
            "The message is not valid JSON", hint="Send one JSON object per text frame"
        ) from None
    if not isinstance(parsed, dict):
        raise InvalidInput("Messages are JSON objects with a 'type'")
    return parsed


def encode(message: Mapping[str, Any]) -> str:
    """A frame's text: compact, UTF-8 (not ASCII-escaped)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


Frame = tuple[int | None, str]
"""A frame's durable seq (None for ephemeral messages and presence) and its text."""


def translate(raw: str) -> Frame:
    """A bus message as the frame every client of the session gets."""
    message = json.loads(raw)
    if message["kind"] == "presence":
        return None, encode({"type": "presence", "participants": message["participants"]})
    event = message["event"]
    seq = None if event["type"] in EPHEMERAL_TYPES else int(event["seq"])
    return seq, encode({"type": "event", "event": event})
