"""Everything the runtime sends, checked before the control plane acts on it.

The runtime runs inside the box next to the agent, and the bridge token sits in its environment,
so any process in the box can speak this protocol: every message is validated by type, every
string is cut to what the real runtime would send (:mod:`openinspect.runtime.protocol` has the
limits), and what is not a well-formed message is dropped. Cutting rather than refusing keeps a
real but verbose runtime working; refusing would only hide what it said.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from openinspect.errors import RpcError
from openinspect.runtime.files import (
    MAX_GLOB_RESULTS,
    MAX_GREP_LINE_CHARS,
    MAX_GREP_MATCHES,
    MAX_READ_CHARS,
)
from openinspect.runtime.protocol import (
    MAX_BRANCH_CHARS,
    MAX_CHUNK_CHARS,
    MAX_ID_CHARS,
    MAX_LOG_LINE_CHARS,
    MAX_MESSAGE_CHARS,
    BootMode,
    BootPhase,
    LogSource,
    Stream,
)

MAX_PATH_CHARS = 4096
"""A path in a result (Linux's PATH_MAX)."""
MAX_VERSION_CHARS = 64
MAX_GENERIC_RESULT_CHARS = 1_000_000
"""Default cap of a result of a method this module does not know (``call`` of anything)."""
_INT_LIMIT = 2**53  # JSON numbers beyond this are not exact in most readers


def _cut(limit: int) -> AfterValidator:
    return AfterValidator(lambda text: text[:limit])


Bounded = Annotated[int, Field(ge=-_INT_LIMIT, le=_INT_LIMIT)]
Count = Annotated[int, Field(ge=0, le=_INT_LIMIT)]


class _Message(BaseModel):
    # Unknown keys are ignored (the protocol may grow); strict types, so "1" is not an int.
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class Hello(_Message):
    type: Literal["hello"]
    runtime_version: Annotated[str, _cut(MAX_VERSION_CHARS)]
    boot_mode: BootMode
    sandbox_id: Annotated[str, Field(max_length=MAX_ID_CHARS * 2)]
    phase: BootPhase | None = None


class Boot(_Message):
    type: Literal["boot"]
    phase: BootPhase
    message: Annotated[str, _cut(MAX_MESSAGE_CHARS)] | None = None
    exit_code: Bounded | None = None
    duration_ms: Count | None = None


class Log(_Message):
    type: Literal["log"]
    source: LogSource
    line: Annotated[str, _cut(MAX_LOG_LINE_CHARS)]


class Heartbeat(_Message):
    type: Literal["heartbeat"]


Event = Hello | Boot | Log | Heartbeat
_EVENTS: dict[str, type[_Message]] = {
    "hello": Hello,
    "boot": Boot,
    "log": Log,
    "heartbeat": Heartbeat,
}

RequestId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]


class ChunkBody(_Message):
    stream: Stream
    data: Annotated[str, _cut(MAX_CHUNK_CHARS)]


class Chunk(_Message):
    id: RequestId
    chunk: ChunkBody


class ErrorBody(_Message):
    # Not the Literal of known codes: a newer runtime may add one, and it is only shown.
    code: Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")]
    message: Annotated[str, _cut(MAX_MESSAGE_CHARS)] = ""


class Failure(_Message):
    id: RequestId
    error: ErrorBody


class Result(_Message):
    id: RequestId
    result: dict[str, Any]


Reply = Chunk | Failure | Result


class Malformed(Exception):
    """Not a message the runtime sends; ``reason`` says why (for the server log, not users)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse(text: str) -> Event | Reply:
    """Validate one frame. Raises :class:`Malformed`."""
    try:
        raw = json.loads(text)
    except ValueError:
        raise Malformed("not JSON") from None
    except RecursionError:
        raise Malformed("nested too deeply") from None
    if not isinstance(raw, dict):
        raise Malformed(f"a JSON {type(raw).__name__}, not an object")
    try:
        if "type" in raw:
            model = _EVENTS.get(raw["type"]) if isinstance(raw["type"], str) else None
            if model is None:
                raise Malformed("an event of unknown type")
            return model.model_validate(raw)  # type: ignore[return-value]
        if "chunk" in raw:
            return Chunk.model_validate(raw)
        if "error" in raw:
            return Failure.model_validate(raw)
        if "result" in raw:
            return Result.model_validate(raw)
    except ValidationError as exc:
        raise Malformed(f"invalid: {exc.errors(include_input=False)[:3]}") from None
    raise Malformed("neither an event nor an answer")


# --- results, by method ------------------------------------------------------------------------


class ExecResult(_Message):
    exit_code: Bounded
    timed_out: bool
    duration_ms: Count


class ReadFileResult(_Message):
    content: str
    total_lines: Count
    truncated: bool


class WriteFileResult(_Message):
    path: Annotated[str, _cut(MAX_PATH_CHARS)]
    bytes: Count


class EditFileResult(_Message):
    path: Annotated[str, _cut(MAX_PATH_CHARS)]


class GlobResult(_Message):
    paths: list[Annotated[str, _cut(MAX_PATH_CHARS)]]
    truncated: bool


class GrepResult(_Message):
    matches: list[Annotated[str, _cut(MAX_PATH_CHARS + MAX_GREP_LINE_CHARS + 24)]]
    truncated: bool


class BindResult(_Message):
    branch: Annotated[str, Field(max_length=MAX_BRANCH_CHARS)]
    tracking: bool
    proxied: bool


_RESULTS: dict[str, type[_Message]] = {
    "exec": ExecResult,
    "pipe": ExecResult,
    "read_file": ReadFileResult,
    "write_file": WriteFileResult,
    "edit_file": EditFileResult,
    "glob": GlobResult,
    "grep": GrepResult,
    "bind": BindResult,
}


RESULT_METHODS = frozenset(_RESULTS)
"""Methods whose results :func:`result_of` checks field by field."""


def result_of(
    method: str, result: dict[str, Any], *, max_chars: int | None = None
) -> dict[str, Any]:
    """``result`` checked against what ``method`` returns and cut to what it can return: file
    content to ``max_chars`` (default the runtime's own cap), lists to the runtime's caps with
    ``truncated`` set. Raises :class:`Malformed` for a result of the wrong shape."""
    model = _RESULTS.get(method)
    if model is None:
        return result  # the caller's size cap was checked on the frame
    try:
        checked = model.model_validate(result).model_dump()
    except ValidationError as exc:
        raise Malformed(f"invalid {method} result: {exc.errors(include_input=False)[:3]}") from None
    if method == "read_file":
        limit = MAX_READ_CHARS if max_chars is None else max_chars
        if len(checked["content"]) > limit:
            checked["content"] = checked["content"][:limit]
            checked["truncated"] = True
    for key, cap in (("paths", MAX_GLOB_RESULTS), ("matches", MAX_GREP_MATCHES)):
        if key in checked and len(checked[key]) > cap:
            checked[key] = checked[key][:cap]
            checked["truncated"] = True
    return checked


def answer_of(
    method: str, message: Failure | Result, frame_chars: int, max_chars: int | None
) -> dict[str, Any]:
    """The result a call returns for ``message``, checked by :func:`result_of`; raises
    ``RpcError``: the runtime's error, ``too_large`` for a frame of an unchecked method over
    ``max_chars``, ``internal`` for a malformed result."""
    if isinstance(message, Failure):
        code, detail = message.error.code, message.error.message
        raise RpcError(detail or code, rpc_code=code, method=method)
    if max_chars is not None and method not in RESULT_METHODS and frame_chars > max_chars:
        raise RpcError(
            f"{method} answered with {frame_chars} characters; at most {max_chars} are accepted",
            rpc_code="too_large",
            method=method,
        )
    try:
        return result_of(method, message.result, max_chars=max_chars)
    except Malformed as exc:
        raise RpcError(
            f"the sandbox runtime answered {method} with a malformed result ({exc.reason})",
            rpc_code="internal",
            method=method,
        ) from None
