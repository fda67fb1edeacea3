"""Wire shapes of the scripted LLM server: OpenAI Chat Completions and Anthropic Messages.

Pure functions from one scripted reply to the JSON body or the SSE byte chunks a real provider would
send. They are kept apart from the server so the shapes can be read (and checked against the SDKs)
without the HTTP plumbing around them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Protocol = Literal["openai", "anthropic"]

# The real API attaches a signature to every thinking block; clients only echo it back, so any
# non-empty string is accepted by the SDKs and by pydantic-ai.
THINKING_SIGNATURE = "scripted-signature"


@dataclass(frozen=True)
class WireToolCall:
    """One tool call of a reply, with the call id the server assigned to it."""

    id: str
    name: str
    args: dict[str, Any]

    @property
    def args_json(self) -> str:
        """The arguments as the JSON text both protocols carry on the wire."""
        return json.dumps(self.args, ensure_ascii=False)


@dataclass(frozen=True)
class WireReply:
    """Everything needed to render one model response, in either protocol."""

    response_id: str
    model: str
    text: str
    input_tokens: int
    thinking: str | None = None
    tool_calls: tuple[WireToolCall, ...] = field(default_factory=tuple)
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def output_tokens(self) -> int:
        """A deterministic stand-in for the output token count (characters / 4, at least 1)."""
        chars = len(self.text) + len(self.thinking or "")
        chars += sum(len(c.name) + len(c.args_json) for c in self.tool_calls)
        return estimate_tokens(chars)


def estimate_tokens(chars: int) -> int:
    """Characters / 4, never 0: clients treat a zero count as "no usage reported"."""
    return max(1, chars // 4)


def split_text(text: str, max_parts: int = 4) -> list[str]:
    """Split ``text`` into up to ``max_parts`` pieces that concatenate back to it exactly.

    Splits at word boundaries when there are enough words, otherwise by characters, so even a
    one-word answer arrives as several deltas and consumers see real incremental streaming.
    """
    if not text:
        return []
    words: list[str] = []
    current = ""
    for ch in text:
        if current and not ch.isspace() and current[-1].isspace():
            words.append(current)
            current = ""
        current += ch
    words.append(current)
    units = words if len(words) >= min(3, max_parts) else list(text)
    n_parts = min(max_parts, len(units))
    parts: list[str] = []
    for i in range(n_parts):
        start = i * len(units) // n_parts
        end = (i + 1) * len(units) // n_parts
        parts.append("".join(units[start:end]))
    return parts


def _split_fragments(data: str, n_parts: int = 3) -> list[str]:
    """Split JSON argument text by characters, the way providers stream partial JSON."""
    n = min(n_parts, len(data))
    if n == 0:
        return []
    return [data[i * len(data) // n : (i + 1) * len(data) // n] for i in range(n)]


# --------------------------------------------------------------------------- OpenAI


def openai_completion(reply: WireReply) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` object."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text or None,
        "refusal": None,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.args_json},
            }
            for call in reply.tool_calls
        ]
    return {
        "id": reply.response_id,
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _openai_finish_reason(reply),
            }
        ],
        "usage": _openai_usage(reply),
        "system_fingerprint": None,
    }


def openai_stream(reply: WireReply, *, include_usage: bool) -> Iterator[bytes]:
    """The SSE chunks of a streamed completion, ending with ``data: [DONE]``."""
    base: dict[str, Any] = {
        "id": reply.response_id,
        "object": "chat.completion.chunk",
        "created": reply.created,
        "model": reply.model,
        "system_fingerprint": None,
    }
    if include_usage:
        # The real API puts an explicit null usage on every chunk when usage was requested.
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {
            "index": 0,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish_reason,
        }
        return _sse_data({**base, "choices": [choice]})

    yield chunk({"role": "assistant", "content": "" if reply.text else None, "refusal": None})
    for piece in split_text(reply.text):
        yield chunk({"content": piece})
    for index, call in enumerate(reply.tool_calls):
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        for fragment in _split_fragments(call.args_json):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
    yield chunk({}, _openai_finish_reason(reply))
    if include_usage:
        yield _sse_data({**base, "choices": [], "usage": _openai_usage(reply)})
    yield b"data: [DONE]\n\n"


def openai_error(message: str, *, error_type: str = "invalid_request_error") -> dict[str, Any]:
    """The error envelope the OpenAI SDK turns into an ``APIStatusError``."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


def _openai_finish_reason(reply: WireReply) -> str:
    return "tool_calls" if reply.tool_calls else "stop"


def _openai_usage(reply: WireReply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _sse_data(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


# --------------------------------------------------------------------------- Anthropic


def anthropic_message(reply: WireReply) -> dict[str, Any]:
    """A non-streaming Messages API ``message`` object."""
    content: list[dict[str, Any]] = []
    if reply.thinking:
        content.append(
            {
                "type": "thinking",
                "thinking": reply.thinking,
                "signature": THINKING_SIGNATURE,
            }
        )
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for call in reply.tool_calls:
        content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.args})
    return {
        **_anthropic_message_head(reply),
        "content": content,
        "stop_reason": _anthropic_stop_reason(reply),
        "usage": _anthropic_usage(reply, reply.output_tokens),
    }


def anthropic_stream(reply: WireReply) -> Iterator[bytes]:
    """The SSE events of a streamed message, from ``message_start`` to ``message_stop``."""
    yield _sse_event(
        "message_start",
        {
            "type": "message_start",
            "message": {
                **_anthropic_message_head(reply),
                "content": [],
                "stop_reason": None,
                # As in the real API: input is known up front, output is reported in message_delta.
                "usage": _anthropic_usage(reply, 1),
            },
        },
    )
    yield _sse_event("ping", {"type": "ping"})
    index = 0
    if reply.thinking:
        yield _block_start(index, {"type": "thinking", "thinking": "", "signature": ""})
        for piece in split_text(reply.thinking):
            yield _block_delta(index, {"type": "thinking_delta", "thinking": piece})
        yield _block_delta(index, {"type": "signature_delta", "signature": THINKING_SIGNATURE})
        yield _block_stop(index)
        index += 1
    if reply.text:
        yield _block_start(index, {"type": "text", "text": ""})
        for piece in split_text(reply.text):
            yield _block_delta(index, {"type": "text_delta", "text": piece})
        yield _block_stop(index)
        index += 1
    for call in reply.tool_calls:
        yield _block_start(
            index, {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        )
        for fragment in _split_fragments(call.args_json):
            yield _block_delta(index, {"type": "input_json_delta", "partial_json": fragment})
        yield _block_stop(index)
        index += 1
    yield _sse_event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": _anthropic_stop_reason(reply),
                "stop_sequence": None,
            },
            "usage": {
                "input_tokens": reply.input_tokens,
                "output_tokens": reply.output_tokens,
            },
        },
    )
    yield _sse_event("message_stop", {"type": "message_stop"})


def anthropic_error(message: str, *, error_type: str = "invalid_request_error") -> dict[str, Any]:
    """The error envelope the Anthropic SDK turns into an ``APIStatusError``."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _anthropic_message_head(reply: WireReply) -> dict[str, Any]:
    return {
        "id": reply.response_id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "stop_sequence": None,
    }


def _anthropic_stop_reason(reply: WireReply) -> str:
    return "tool_use" if reply.tool_calls else "end_turn"


def _anthropic_usage(reply: WireReply, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": reply.input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _block_start(index: int, block: dict[str, Any]) -> bytes:
    return _sse_event(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )


def _block_delta(index: int, delta: dict[str, Any]) -> bytes:
    return _sse_event(
        "content_block_delta",
        {"type": "content_block_delta", "index": index, "delta": delta},
    )


def _block_stop(index: int) -> bytes:
    return _sse_event("content_block_stop", {"type": "content_block_stop", "index": index})


def _sse_event(event: str, payload: dict[str, Any]) -> bytes:
    # Anthropic's SDK skips SSE messages without an `event:` line, so it is always written.
    return f"event: {event}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()
