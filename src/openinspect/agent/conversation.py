"""A session's agent conversation as the store holds it: one row per message, in order.

The agent loop saves after every model step. Rewriting the whole history each time made a
prompt's writes grow with the square of its steps; ``Conversation`` knows what is stored and
writes only from the first message that differs, which is the end of the stored history except
when pydantic-ai rewrites a message it was given (it merges consecutive requests, for example).
Checking what is stored costs nothing for the messages already known to be the stored objects;
only new ones, and the last stored one (the one a run may replace), are encoded and compared.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import pydantic
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ToolCallPart,
    ToolReturnPart,
)

STOPPED_TOOL_RESULT = "The user stopped this tool call before it finished."

# The settings of pydantic-ai's ``ModelMessagesTypeAdapter``, for one message at a time.
_MESSAGE = pydantic.TypeAdapter(
    ModelMessage,
    config=pydantic.ConfigDict(defer_build=True, ser_json_bytes="base64", val_json_bytes="base64"),
)

Write = Callable[[int, Sequence[str]], Awaitable[None]]
"""Store ``rows`` as the messages from position ``start`` on, dropping any stored after them."""


def encode_message(message: ModelMessage) -> str:
    return _MESSAGE.dump_json(message).decode()


def decode_messages(rows: Sequence[str]) -> list[ModelMessage]:
    return [_MESSAGE.validate_json(row) for row in rows]


def close_dangling_tool_calls(messages: Sequence[ModelMessage]) -> list[ModelMessage]:
    """A run cut short can end on tool calls without results, which providers refuse in the next
    request. Answer each such call so the conversation can continue."""
    out = list(messages)
    if out and isinstance(out[-1], ModelResponse):
        calls = [p for p in out[-1].parts if isinstance(p, ToolCallPart)]
        if calls:
            out.append(
                ModelRequest(
                    parts=[
                        ToolReturnPart(
                            tool_name=c.tool_name,
                            content=STOPPED_TOOL_RESULT,
                            tool_call_id=c.tool_call_id,
                        )
                        for c in calls
                    ]
                )
            )
    return out


class Conversation:
    """The stored history of one session, and the writes that bring the store up to date."""

    def __init__(self, rows: Sequence[str] = ()) -> None:
        self._rows = list(rows)
        self._known: list[ModelMessage] = decode_messages(self._rows)
        """The message objects known to equal the row at the same position."""

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def rows(self) -> list[str]:
        """The stored rows (a copy)."""
        return list(self._rows)

    def history(self) -> list[ModelMessage]:
        """The messages to continue from: the stored ones, with calls left unanswered by a run
        that was cut short answered (the answer is stored with the next write)."""
        return close_dangling_tool_calls(self._known)

    def changes(self, messages: Sequence[ModelMessage]) -> tuple[int, list[str]] | None:
        """The first position at which ``messages`` differ from what is stored and their rows
        from there, or None when the store already holds exactly ``messages``."""
        last = len(self._rows) - 1
        for i, message in enumerate(messages):
            if i > last:
                return i, [encode_message(m) for m in messages[i:]]
            if message is self._known[i] and i < last:
                continue
            row = encode_message(message)
            if row != self._rows[i]:
                return i, [row, *(encode_message(m) for m in messages[i + 1 :])]
        if len(messages) < len(self._rows):
            return len(messages), []
        return None

    async def save(self, messages: Sequence[ModelMessage], write: Write) -> int:
        """Write what changed through ``write``; returns the number of rows written. What this
        object believes is stored changes only once the write returned."""
        change = self.changes(messages)
        if change is None:
            self._known = list(messages)  # equal to the rows: remember these objects
            return 0
        start, rows = change
        await write(start, rows)
        self._rows[start:] = rows
        self._known = list(messages)
        return len(rows)
