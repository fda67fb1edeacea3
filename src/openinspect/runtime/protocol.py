"""Wire format of the sandbox bridge (a public contract: change it only compatibly).

The runtime inside a sandbox dials ``GET /sandbox/bridge`` at its bridge URL (a Unix socket, or
``wss://`` for a remote box: :mod:`.address`) with the headers ``Authorization: Bearer <sandbox
token>`` and ``X-Sandbox-Id: <sandbox id>``. Every WebSocket message is one JSON object in a
text frame.

**RPC, control plane → runtime**

- request ``{"id": str, "method": str, "params": {...}}``. Ids are unique per sandbox. The control
  plane re-sends every unanswered request after a reconnect; the runtime ignores a request whose id
  is running and re-sends the answer of one that finished recently, so a request is never run twice.
- cancel ``{"cancel": id}``: stop that request (kills an ``exec``'s process group); unknown ids are
  ignored.
- input ``{"input": id, "data": str | null}``: write ``data`` to the stdin of the running ``pipe``
  request ``id`` (``null`` closes it); unknown ids are ignored. Input is not re-sent after a
  reconnect: a ``pipe`` (an in-box MCP server) does not outlive its connection's blips unharmed.

**RPC, runtime → control plane**

- result ``{"id", "result": {...}}`` or error ``{"id", "error": {"code": str, "message": str}}``,
  exactly once per request (at least once across reconnects; duplicates are ignored).
- chunk ``{"id", "chunk": {"stream": "stdout" | "stderr", "data": str}}``: streamed output of
  ``exec``, batched (at most every ~50 ms or 16 KiB per stream), before the request's result.

Methods: ``exec``, ``pipe``, ``read_file``, ``write_file``, ``edit_file``, ``glob``, ``grep``, and
``bind`` (once a box has booted: the session it now serves, see :class:`BindParams`); their
parameters and results are the ``*Params`` / ``*Result`` types below. Error codes are
:data:`ERROR_CODES`.

**Events, runtime → control plane** (carry ``"type"``)

- ``hello {runtime_version, boot_mode, sandbox_id, phase}``: first message on every connection;
  ``phase`` is the boot phase reached so far (so a reconnect tells where boot stands).
- ``boot {phase, message?, exit_code?, duration_ms?}``: ``phase`` is one of ``clone``, ``setup``,
  ``start`` (sent when the phase begins), then ``ready`` or ``failed`` (with the total boot
  ``duration_ms``; ``failed`` names the failure in ``message`` and a script's ``exit_code``).
- ``log {source: "clone" | "setup" | "start", line}``: one line of boot output.
- ``heartbeat {}``: every ``OPENINSPECT_HEARTBEAT_S`` while connected.

**Events, control plane → runtime**: ``{"type": "shutdown"}``: kill every running command, exit 0;
``{"type": "wake"}``: a prompt started, so a hibernated runtime comes back now (:mod:`.hibernate`);
an awake one ignores it.

**Refusals.** The control plane refuses an unknown sandbox, a wrong token or a lost sandbox
at the handshake (HTTP 403). After accepting, it closes a connection it will never take back with
:data:`CLOSE_UNAUTHORIZED`, :data:`CLOSE_REPLACED` or :data:`CLOSE_GONE`. The runtime exits for
good on those codes and on an HTTP 401/403/404/410 handshake answer; on anything else it
reconnects with backoff.

**Limits.** The control plane trusts nothing it reads here: the token is in the runtime's
environment, so any process in the box can open a bridge connection of its own. Therefore:

- One connection per sandbox at a time. A connection made while another one of the same sandbox
  is open is closed at once with :data:`CLOSE_BUSY` (not permanent: the real runtime, whose
  previous connection the control plane may not have seen end yet, retries with backoff). The
  runtime connects before it runs any other code in the box, so it holds the slot first.
- The first message of a connection must be a ``hello`` naming the authenticated sandbox, else
  the connection is closed with :data:`CLOSE_UNAUTHORIZED`.
- A frame over :data:`MAX_FRAME_BYTES` closes the connection with 1009 (message too big); the
  runtime never sends one (it answers ``too_large`` instead of an oversize result).
- Every message is validated by type; strings are cut to the limits below (``log`` lines to
  :data:`MAX_LOG_LINE_CHARS`, which the runtime also applies); malformed messages and answers to
  unknown ids are dropped; results are cut to what the method can legitimately return.
- A token bucket per sandbox paces reading (messages and bytes per second); events over the rate
  are dropped, answers to running requests wait. Boot log volume is capped per sandbox.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

BRIDGE_PATH = "/sandbox/bridge"
BRIDGE_URI = f"ws://localhost{BRIDGE_PATH}"
EGRESS_PATH = "/sandbox/egress"
"""Where the runtime opens one WebSocket per egress connection (:mod:`.egressforward`): binary
messages carry the bytes, an empty one says the box has finished sending."""
SANDBOX_ID_HEADER = "X-Sandbox-Id"

CLOSE_UNAUTHORIZED = 4001
"""Unknown sandbox id or wrong token."""
CLOSE_REPLACED = 4002
"""Another connection authenticated as the same sandbox and took over (no longer sent: a second
connection is refused with :data:`CLOSE_BUSY` instead; still permanent for older servers)."""
CLOSE_GONE = 4010
"""The control plane considers the sandbox lost or shut down."""
CLOSE_BUSY = 4009
"""Another connection of this sandbox is open; retry later (not permanent)."""
CLOSE_TOO_BIG = 1009
"""A frame over :data:`MAX_FRAME_BYTES` (the WebSocket standard code, sent by the server)."""
PERMANENT_CLOSE_CODES = frozenset({CLOSE_UNAUTHORIZED, CLOSE_REPLACED, CLOSE_GONE})

MAX_FRAME_BYTES = 4 * 1024 * 1024
"""Largest runtime → control plane frame; the bridge server closes the connection past it."""
MAX_LOG_LINE_CHARS = 4000
"""A ``log`` line is cut to this (by the runtime, and again by the control plane)."""
MAX_CHUNK_CHARS = 256 * 1024
"""A ``chunk``'s ``data`` is cut to this (the runtime sends at most about 80 KiB)."""
MAX_MESSAGE_CHARS = 2000
"""A ``boot`` or ``error`` message is cut to this."""
MAX_BRANCH_CHARS = 255
"""A ``bind``'s work branch (and the branch its answer names)."""
MAX_ID_CHARS = 64
"""Request ids (the control plane makes 32 hex digits)."""
PERMANENT_HTTP_STATUSES = frozenset({401, 403, 404, 410})

Stream = Literal["stdout", "stderr"]
BootMode = Literal["build", "fresh", "repo_image", "snapshot_restore"]
BOOT_MODES: tuple[BootMode, ...] = ("build", "fresh", "repo_image", "snapshot_restore")
BootPhase = Literal["clone", "setup", "start", "ready", "failed"]
LogSource = Literal["clone", "setup", "start"]

ErrorCode = Literal[
    "not_found",
    "invalid_params",
    "edit_no_match",
    "edit_ambiguous",
    "io_error",
    "unknown_method",
    "cancelled",
    "too_large",
    "internal",
    "not_ready",
    "already_bound",
    "git_failed",
]
ERROR_CODES: tuple[ErrorCode, ...] = (
    "not_found",
    "invalid_params",
    "edit_no_match",
    "edit_ambiguous",
    "io_error",
    "unknown_method",
    "cancelled",
    "too_large",
    "internal",
    "not_ready",
    "already_bound",
    "git_failed",
)


# --- RPC envelopes ---------------------------------------------------------------------------


class Request(TypedDict):
    """Control plane → runtime: run ``method``; answered once under the same ``id``."""

    id: str
    method: str
    params: dict[str, object]


class Cancel(TypedDict):
    """Control plane → runtime: stop the request ``cancel``."""

    cancel: str


class ErrorBody(TypedDict):
    """Why a request failed: a stable code from :data:`ERROR_CODES` and a message."""

    code: ErrorCode
    message: str


class ResultMessage(TypedDict):
    """Runtime → control plane: the request's result."""

    id: str
    result: dict[str, object]


class ErrorMessage(TypedDict):
    """Runtime → control plane: the request failed."""

    id: str
    error: ErrorBody


class ChunkBody(TypedDict):
    """A batch of decoded output of one stream."""

    stream: Stream
    data: str


class ChunkMessage(TypedDict):
    """Runtime → control plane: output of a running ``exec``."""

    id: str
    chunk: ChunkBody


# --- Method parameters and results -----------------------------------------------------------


class ExecParams(TypedDict):
    """``exec``: run ``/bin/bash -c command`` (cwd relative to the repo)."""

    command: str
    timeout_s: float
    cwd: NotRequired[str]
    env: NotRequired[dict[str, str]]


class PipeParams(TypedDict):
    """``pipe``: run ``argv`` (no shell, cwd relative to the repo) with a stdin pipe fed by
    ``input`` messages; output streams as ``exec``'s does and the result is an ``ExecResult``."""

    argv: list[str]
    timeout_s: float
    cwd: NotRequired[str]


class ExecResult(TypedDict):
    """``exec``'s result; a failing command is a result, not an error."""

    exit_code: int
    """The shell's exit status; 128 + N when killed by signal N."""
    timed_out: bool
    duration_ms: int


class ReadFileParams(TypedDict):
    """``read_file``: a window of lines of a text file."""

    path: str
    offset: NotRequired[int]
    """First line to return, 1-based."""
    limit: NotRequired[int]
    """Most lines to return."""


class ReadFileResult(TypedDict):
    """``read_file``'s result."""

    content: str
    total_lines: int
    truncated: bool
    """True when the selected lines were cut at the size limit."""


class WriteFileParams(TypedDict):
    """``write_file``: replace or create a file (parents included)."""

    path: str
    content: str


class WriteFileResult(TypedDict):
    """``write_file``'s result: the path as given back and the bytes written."""

    path: str
    bytes: int


class EditFileParams(TypedDict):
    """``edit_file``: replace the one occurrence of ``old`` with ``new``."""

    path: str
    old: str
    new: str


class EditFileResult(TypedDict):
    """``edit_file``'s result."""

    path: str


class GlobParams(TypedDict):
    """``glob``: ``*``, ``?``, ``[..]``, ``{a,b}`` and ``**``, relative to the repo."""

    pattern: str


class GlobResult(TypedDict):
    """``glob``'s result."""

    paths: list[str]
    """Sorted, relative to the repo, ``.git`` skipped."""
    truncated: bool


class GrepParams(TypedDict):
    """``grep``: search text files (``git grep --untracked`` selection)."""

    pattern: str
    """A Python regular expression."""
    path: NotRequired[str]


class GrepResult(TypedDict):
    """``grep``'s result."""

    matches: list[str]
    """``path:line:text`` with the path relative to the repo."""
    truncated: bool


class BindParams(TypedDict):
    """``bind``: the session a booted box now serves (once: a box serves one session).

    The box checks out ``work_branch`` (tracking ``origin/<work_branch>`` when its clone has
    it, else created from the base branch) and, with ``git_remote_path``, points ``origin`` at
    the git proxy through its loopback forwarder. Binding again to the same values answers as
    the first time (a restarted box reusing its checkout is bound anew); other values are
    ``already_bound``; before the clone is there, ``not_ready``; a git step that fails,
    ``git_failed``.
    """

    work_branch: str
    git_remote_path: NotRequired[str]
    """``/git/<session>/<owner>/<repo>.git``; absent leaves ``origin`` as cloned."""


class BindResult(TypedDict):
    """``bind``'s result."""

    branch: str
    """The branch now checked out (the ``work_branch`` asked for)."""
    tracking: bool
    """Whether it continues ``origin/<branch>`` (a follow-up session's pushed branch)."""
    proxied: bool
    """Whether ``origin`` is the git proxy."""


# --- Events ----------------------------------------------------------------------------------


class HelloMessage(TypedDict):
    """Runtime → control plane, first on every connection."""

    type: Literal["hello"]
    runtime_version: str
    boot_mode: BootMode
    sandbox_id: str
    phase: BootPhase | None


class BootMessage(TypedDict):
    """Runtime → control plane: boot progress."""

    type: Literal["boot"]
    phase: BootPhase
    message: NotRequired[str]
    exit_code: NotRequired[int]
    duration_ms: NotRequired[int]


class LogMessage(TypedDict):
    """Runtime → control plane: a line of clone, setup.sh or start.sh output."""

    type: Literal["log"]
    source: LogSource
    line: str


class HeartbeatMessage(TypedDict):
    """Runtime → control plane: still alive."""

    type: Literal["heartbeat"]


class WakeMessage(TypedDict):
    """Control plane → runtime: a prompt started; a hibernated runtime comes back now."""

    type: Literal["wake"]


class ShutdownMessage(TypedDict):
    """Control plane → runtime: kill every command and exit."""

    type: Literal["shutdown"]


RuntimeEvent = HelloMessage | BootMessage | LogMessage | HeartbeatMessage
"""Every non-RPC message the runtime sends."""


class RpcFailure(Exception):
    """Raised by a method implementation; becomes an ``error`` message with this code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message

    def body(self) -> ErrorBody:
        """The ``error`` object sent on the wire."""
        return {"code": self.code, "message": self.message}
