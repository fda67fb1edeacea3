"""Keeping secret values out of what is stored, shown and sent: every occurrence of a value a
box was given becomes ``[secret:NAME]``.

What is replaced (:func:`variants`): the value as it is, and the forms a shell or a program
commonly prints it in: without the whitespace around it; its words joined by single spaces (what
``echo $NAME`` prints of a value with newlines or runs of spaces); each of its lines and words of
at least :data:`PART_MIN_CHARS` characters (a key file printed line by line, or with ``\\r\\n``);
and its JSON-escaped form (a ``repr`` or JSON dump of the environment). A value is at least
:data:`~openinspect.secrets.rules.VALUE_MIN_CHARS` characters long (shorter ones are refused when
set), so no replacement ever hides ordinary short text. Encodings (base64, hex, a value cut in
pieces) are not recognised: redaction keeps values out of what a box prints in the course of its
work; it cannot stop an agent that sets out to print a value it can read.

Where it is applied:

- :class:`~openinspect.sandboxes.connection.SandboxConnection`: everything a box sends back
  (command output, read and grep results, errors, boot and log lines) is redacted as it arrives,
  before a tool, the model, an event or a log sees it. Streamed output goes through a
  :class:`StreamRedactor`, which holds back the end of a chunk that could be the start of a value
  until the next chunk (or the end of the call) says whether it is one.
- :class:`SecretRedaction` (one per control plane): every event of a session is redacted with
  its repo's and the global secrets, and with every value its boxes were given, before the event
  log stores or publishes it (``sessions.eventlog``): a second net for what reaches events by
  another path (a branch name the box pushed, text a person typed).
- the box's log file (``sandboxes.local``), through a :class:`StreamRedactor` of bytes;
- the server's log: a log record factory replaces the values every live :class:`SecretRedaction`
  knows in each record's message and traceback as the record is made.
"""

from __future__ import annotations

import json
import logging
import re
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from openinspect.domain.events import Event, event_adapter
from openinspect.errors import OpenInspectError
from openinspect.secrets.rules import VALUE_MIN_CHARS

if TYPE_CHECKING:
    from openinspect.store import Store
    from openinspect.store.changes import Change

log = logging.getLogger(__name__)

PART_MIN_CHARS = 8
"""A line or word of a value is replaced on its own when it has at least this many characters."""
LABEL = "[secret:{name}]"
SHORT_LABEL = "***"
"""Used instead of :data:`LABEL` where a longer text would break an event's size limit: never
longer than what it replaces (every form replaced has at least ``VALUE_MIN_CHARS``)."""
SESSIONS_MAX = 10_000
"""Sessions :class:`SecretRedaction` remembers at most (the least recently used go first: a
session with a box has events often, and its box's connection keeps its own redactor)."""
REFRESH_S = 30.0
"""How old the secrets :class:`SecretRedaction` loaded for a session may get before it reads
them again (a secret set on another server is redacted in this one's events within this)."""
STRUCTURAL_FIELDS = frozenset(
    {
        "v",
        "type",
        "session_id",
        "seq",
        "ts",
        "prompt_id",
        "call_id",
        "part_id",
        "child_session_id",
        "status",
        "state",
        "origin",
        "effort",
        "model",
    }
)
"""Event fields that are ids, kinds and the control plane's own words: never rewritten (a
``Literal`` field that became ``[secret:…]`` would make the event unreadable)."""

T = TypeVar("T", str, bytes)


def variants(value: str) -> list[str]:
    """The forms of ``value`` that are replaced (see the module docstring), longest first."""
    forms = [value, value.strip()]
    words = value.split()
    if len(words) > 1:
        forms.append(" ".join(words))
        forms += [w for w in words if len(w) >= PART_MIN_CHARS]
    lines = value.splitlines()
    if len(lines) > 1:
        forms.append("\r\n".join(lines))
        forms += [line.strip() for line in lines if len(line.strip()) >= PART_MIN_CHARS]
    forms.append(json.dumps(value, ensure_ascii=False)[1:-1])
    kept = {f for f in forms if len(f.strip()) >= VALUE_MIN_CHARS}
    return sorted(kept, key=lambda f: (-len(f), f))


class _Matcher(Generic[T]):
    """Finds the replaced forms in text (``str``) or raw output (``bytes``).

    One regular expression of all the forms, as a trie (forms sharing a start share its
    branch, so each position is tried against a few branches, not every form); the longest form
    that matches at a position wins. ``holdback`` finds where an unfinished form may start at
    the end of a chunk."""

    def __init__(self, forms: Mapping[T, T]) -> None:
        self._labels: dict[T, T] = dict(forms)
        self._forms: list[T] = sorted(forms, key=len, reverse=True)
        self._pattern: re.Pattern[T] | None = _compile(self._forms) if self._forms else None

    def sub(self, text: T) -> T:
        if self._pattern is None or not text:
            return text
        out, count = self._pattern.subn(self._label, text)
        return out if count else text

    def _label(self, match: re.Match[T]) -> T:
        return self._labels[match.group(0)]

    def holdback(self, text: T) -> int:
        """The start of the longest end of ``text`` that is the start of a form (``len(text)``
        when there is none): what a stream must keep until more arrives."""
        start = len(text)
        for form in self._forms:
            # Only an end shorter than the form, and longer than any end found already.
            lo = max(0, len(text) - len(form) + 1)
            first = form[:1]
            i = text.find(first, lo, start)
            while i != -1:
                if form.startswith(text[i:]):
                    start = i
                    break
                i = text.find(first, i + 1, start)
        return start

    def feed(self, pending: T, data: T) -> tuple[T, T]:
        """``(out, pending)``: what of ``pending + data`` can go out now, redacted, and what
        must wait for the next chunk."""
        text = pending + data
        if self._pattern is None:
            return text, text[:0]
        cut = self.holdback(text)
        if cut == len(text):
            return self.sub(text), text[:0]
        parts: list[T] = []
        last = 0
        for match in self._pattern.finditer(text):
            if match.start() >= cut:
                break
            parts += [text[last : match.start()], self._labels[match.group(0)]]
            last = match.end()
            cut = max(cut, last)  # a whole form that runs past the cut goes out whole
        parts.append(text[last:cut])
        return text[:0].join(parts), text[cut:]


def _compile(forms: list[T]) -> re.Pattern[T]:
    try:
        return re.compile(_trie(forms))
    except (RecursionError, re.error, OverflowError):  # absurdly nested: a plain alternation
        empty = forms[0][:0]
        bar = "|" if isinstance(empty, str) else b"|"
        return re.compile(bar.join(re.escape(f) for f in forms))


def _trie(forms: list[T]) -> T:
    """A regular expression matching any of ``forms``, longest first, as a radix trie."""
    empty = forms[0][:0]
    text = isinstance(empty, str)

    def lit(s: T) -> T:
        return re.escape(s)

    def group(alternatives: list[T], optional: bool) -> T:
        if text:
            inner = "|".join(alternatives)  # type: ignore[arg-type]
            return f"(?:{inner}){'?' if optional else ''}"  # type: ignore[return-value]
        inner_b = b"|".join(alternatives)  # type: ignore[arg-type]
        return b"(?:" + inner_b + b")" + (b"?" if optional else b"")  # type: ignore[return-value]

    def build(node: list[T]) -> T:
        """``node``: the rest of the forms under a common start (``empty``: one ends here)."""
        ends = any(len(f) == 0 for f in node)
        rest = sorted({f for f in node if f})
        if not rest:
            return empty
        by_first: dict[T, list[T]] = {}
        for f in rest:
            by_first.setdefault(f[:1], []).append(f)
        alternatives = []
        for branch in by_first.values():
            prefix = _common_prefix(branch)
            alternatives.append(lit(prefix) + build([f[len(prefix) :] for f in branch]))
        if len(alternatives) == 1 and not ends:
            return alternatives[0]
        return group(alternatives, ends)

    return build(list(forms))


def _common_prefix(strings: list[T]) -> T:
    first, last = min(strings), max(strings)
    n = 0
    while n < len(first) and n < len(last) and first[n : n + 1] == last[n : n + 1]:
        n += 1
    return first[:n]


class Redactor:
    """Replaces the values of some secrets (``(name, value)`` pairs) in text: see the module
    docstring. Immutable; cheap to share."""

    def __init__(self, secrets: Iterable[tuple[str, str]] = ()) -> None:
        labels: dict[str, str] = {}
        for name, value in sorted(set(secrets)):
            for form in variants(value):
                labels.setdefault(form, LABEL.format(name=name))
        self._text = _Matcher(labels)
        self._short = _Matcher(dict.fromkeys(labels, SHORT_LABEL))
        self._bytes: _Matcher[bytes] | None = None
        self._labels = labels

    def __repr__(self) -> str:  # never the values
        return f"Redactor({len(self._labels)} forms)"

    @property
    def empty(self) -> bool:
        return not self._labels

    def redact(self, text: str) -> str:
        """``text`` with every form replaced; the same object when nothing was."""
        return self._text.sub(text)

    def redact_short(self, text: str) -> str:
        """As :meth:`redact`, with :data:`SHORT_LABEL`: the text never gets longer."""
        return self._short.sub(text)

    def stream(self) -> StreamRedactor[str]:
        """A redactor for text that arrives in chunks."""
        return StreamRedactor(self._text)

    def byte_stream(self) -> StreamRedactor[bytes]:
        """A redactor for raw output (UTF-8) that arrives in chunks."""
        if self._bytes is None:
            self._bytes = _Matcher(
                {form.encode(): label.encode() for form, label in self._labels.items()}
            )
        return StreamRedactor(self._bytes)

    def redact_tree(self, value: Any, *, short: bool = False) -> Any:
        """``value`` (text, a dict, a list or tuple, a pydantic model: nested) with every string
        redacted; the same object where nothing changed."""
        return _tree(value, self.redact_short if short else self.redact, frozenset())

    def redact_event(self, event: Event) -> Event:
        """``event`` with every field redacted but its ids and kinds (:data:`STRUCTURAL_FIELDS`).
        A field with a size limit that the label would break is redacted with
        :data:`SHORT_LABEL` instead, so the event stays valid."""
        if self.empty:
            return event
        redacted: Event = _tree(event, self.redact, STRUCTURAL_FIELDS)
        if redacted is event:
            return event
        try:
            event_adapter.validate_python(redacted.model_dump())
        except ValidationError:
            shorter: Event = _tree(event, self.redact_short, STRUCTURAL_FIELDS)
            return shorter
        return redacted


EMPTY = Redactor()
TITLE_MAX_CHARS = 500
"""A session title's column: a redacted title longer than this takes the short label."""


def _title(redactor: Redactor, title: str) -> str:
    shown = redactor.redact(title)
    return shown if len(shown) <= TITLE_MAX_CHARS else redactor.redact_short(title)


def _tree(value: Any, redact: Callable[[str], str], skip: frozenset[str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, BaseModel):
        changes = {}
        for key in type(value).model_fields:
            if key in skip:
                continue
            old = getattr(value, key)
            new = _tree(old, redact, frozenset())
            if new is not old:
                changes[key] = new
        return value.model_copy(update=changes) if changes else value
    if isinstance(value, dict):
        items = {_tree(k, redact, skip): _tree(v, redact, skip) for k, v in value.items()}
        same = len(items) == len(value) and all(
            k in value and value[k] is v for k, v in items.items()
        )
        return value if same else items
    if isinstance(value, list | tuple):
        seq = [_tree(v, redact, skip) for v in value]
        if all(a is b for a, b in zip(seq, value, strict=True)):
            return value
        return type(value)(seq) if isinstance(value, tuple) else seq
    return value


class StreamRedactor(Generic[T]):
    """Redacts a stream chunk by chunk: a value split across chunks is still found, because the
    end of a chunk that could begin one waits for the next (at most the longest form, less one
    character). Call :meth:`flush` at the end for what is still waiting."""

    def __init__(self, matcher: _Matcher[T]) -> None:
        self._matcher: _Matcher[T] = matcher
        self._pending: T | None = None

    def feed(self, data: T) -> T:
        """What of everything fed so far can go out now, redacted (maybe empty)."""
        pending = data[:0] if self._pending is None else self._pending
        out, self._pending = self._matcher.feed(pending, data)
        return out

    def flush(self) -> T | None:
        """What is still held back, redacted; None when nothing is."""
        pending, self._pending = self._pending, None
        if not pending:
            return None
        return self._matcher.sub(pending)


# --- per session, in one control plane ------------------------------------------------------


class _Unknown:
    """``repo_id`` not given (None is a session on no registered repo)."""


_UNKNOWN = _Unknown()


@dataclass
class _Session:
    pairs: dict[tuple[str, str], None] = field(default_factory=dict)
    """Every (name, value) this session's events are redacted with: what its boxes were given
    and what was loaded for it, kept when a secret changes (old output may hold the old one)."""
    redactor: Redactor = EMPTY
    loaded_at: float | None = None


_shared: weakref.WeakValueDictionary[tuple[tuple[str, str], ...], Redactor] = (
    weakref.WeakValueDictionary()
)


def redactor_of(pairs: Iterable[tuple[str, str]]) -> Redactor:
    """The redactor of ``pairs``, shared by everyone asking for the same ones (the sessions of
    one repo), so that each is compiled once."""
    key = tuple(sorted(set(pairs)))
    if not key:
        return EMPTY
    found = _shared.get(key)
    if found is None:
        found = _shared[key] = Redactor(key)
    return found


class SecretRedaction:
    """The secret values of each session this process works on, for its events and the log.

    A session's values are loaded from the store the first time one of its events is redacted
    (its repo's and the global secrets), read again when they are older than ``refresh_s`` or a
    change was made here (:meth:`changed`), and joined by what each box of the session was given
    (:meth:`track`). Values are only ever added while the session is here: output printed
    before a secret was changed or deleted may still hold the old value. :meth:`forget` drops a
    session that left this process.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._clock = clock
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._all = EMPTY
        self._all_pairs: frozenset[tuple[str, str]] = frozenset()
        _live.add(self)
        _install_log_redaction()

    def track(self, session_id: str, secrets: Mapping[str, str]) -> Redactor:
        """Add what a box of the session is given; the session's redactor (all its values)."""
        entry = self._entry(session_id)
        self._add(entry, secrets)
        return entry.redactor

    def _entry(self, session_id: str) -> _Session:
        entry = self._sessions.get(session_id)
        if entry is None:
            entry = self._sessions[session_id] = _Session()
            if len(self._sessions) > SESSIONS_MAX:
                self._sessions.popitem(last=False)
                self._rebuild_all()
        else:
            self._sessions.move_to_end(session_id)
        return entry

    def get(self, session_id: str) -> Redactor | None:
        """The session's redactor as it is now, without loading anything."""
        entry = self._sessions.get(session_id)
        return entry.redactor if entry is not None else None

    async def of_session(
        self, session_id: str, *, repo_id: str | _Unknown | None = _UNKNOWN
    ) -> Redactor:
        """The session's redactor, its secrets loaded (again) when they are not yet or no
        longer fresh. ``repo_id``: the session's repo when the caller knows it (a session whose
        row is not written yet); else it is read with the secrets."""
        entry = self._sessions.get(session_id)
        now = self._clock()
        fresh = (
            entry is not None
            and entry.loaded_at is not None
            and now - entry.loaded_at < self._refresh_s
        )
        if fresh or self._store is None:
            if entry is None:
                return EMPTY
            self._sessions.move_to_end(session_id)
            return entry.redactor
        entry = self._entry(session_id)
        try:
            if isinstance(repo_id, _Unknown):
                loaded = await self._store.secrets.values_for_session(session_id)
            else:
                loaded = await self._store.secrets.values_for(repo_id)
        except OpenInspectError as exc:
            # A value that does not open (another key), or the store is down: events go with
            # the values this session's boxes were given until the next try, ``refresh_s`` on.
            log.warning("secrets of session %s cannot be read: %s", session_id, exc.message)
            entry.loaded_at = now
            return entry.redactor
        entry.loaded_at = now
        self._add(entry, loaded)
        return entry.redactor

    def changed(self) -> None:
        """Secrets were set or deleted (here): read them again at each session's next event."""
        for entry in self._sessions.values():
            entry.loaded_at = None

    def forget(self, session_id: str) -> None:
        if self._sessions.pop(session_id, None) is not None:
            self._rebuild_all()

    def close(self) -> None:
        self._sessions.clear()
        self._rebuild_all()
        _live.discard(self)

    async def redact_change(self, change: Change) -> Change:
        """``change`` with its event, the session title it writes (the same in the row and the
        event) and a prompt's error redacted with its session's secrets."""
        from openinspect.store.changes import PromptMove

        new_session = change.new_session
        if new_session is not None:  # its row is written with this change
            repo_id = new_session.session.repo_id
            redactor = await self.of_session(change.event.session_id, repo_id=repo_id)
        else:
            redactor = await self.of_session(change.event.session_id)
        if redactor.empty:
            return change
        updates: dict[str, Any] = {}
        event = redactor.redact_event(change.event)
        title = change.session.get("title")
        if isinstance(title, str) and (shown := _title(redactor, title)) is not title:
            updates["session"] = {**change.session, "title": shown}
            if getattr(event, "title", None) is not None:
                event = event.model_copy(update={"title": shown})
        if new_session is not None:
            title = new_session.session.title
            if (shown := _title(redactor, title)) is not title:
                session = new_session.session.model_copy(update={"title": shown})
                updates["new_session"] = replace(new_session, session=session)
                event = event.model_copy(update={"title": shown})
        if event is not change.event:
            updates["event"] = event
        prompt = change.prompt
        if isinstance(prompt, PromptMove) and prompt.error_message is not None:
            message = redactor.redact(prompt.error_message)
            if message is not prompt.error_message:
                updates["prompt"] = replace(prompt, error_message=message)
        return replace(change, **updates) if updates else change

    async def redact_event(self, event: Event) -> Event:
        return (await self.of_session(event.session_id)).redact_event(event)

    @property
    def has_values(self) -> bool:
        return not self._all.empty

    def redact_log(self, text: str) -> str:
        """``text`` with every value of every session here replaced (for the server's log)."""
        return self._all.redact(text)

    def _add(self, entry: _Session, secrets: Mapping[str, str]) -> None:
        before = len(entry.pairs)
        entry.pairs.update(dict.fromkeys(secrets.items()))
        if len(entry.pairs) != before or entry.redactor is EMPTY:
            entry.redactor = redactor_of(entry.pairs)
            self._rebuild_all()

    def _rebuild_all(self) -> None:
        pairs = frozenset(p for entry in self._sessions.values() for p in entry.pairs)
        if pairs != self._all_pairs:
            self._all_pairs = pairs
            self._all = redactor_of(pairs)


# --- the server's log -------------------------------------------------------------------------

_live: weakref.WeakSet[SecretRedaction] = weakref.WeakSet()
_installed = False


def _install_log_redaction() -> None:
    """Make every log record of this process pass through the live redactions as it is made
    (once per process; a record factory rather than a filter, so that every handler, a test's
    capture included, gets the redacted record)."""
    global _installed
    if _installed:
        return
    _installed = True
    base = logging.getLogRecordFactory()

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        redactions = [r for r in list(_live) if r.has_values]
        if redactions:
            _redact_record(record, redactions)
        return record

    logging.setLogRecordFactory(make)


def _redact_record(record: logging.LogRecord, redactions: list[SecretRedaction]) -> None:
    """Redact a record's message and arguments one by one (formatters that read the arguments,
    uvicorn's access log among them, keep their shape) and its traceback, formatted now."""

    def redact(text: str) -> str:
        for redaction in redactions:
            text = redaction.redact_log(text)
        return text

    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_redact_arg(a, redact) for a in record.args)
    elif isinstance(record.args, Mapping):
        record.args = {k: _redact_arg(v, redact) for k, v in record.args.items()}
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _redact_arg(arg: Any, redact: Callable[[str], str]) -> Any:
    """A log argument, or its text redacted when that holds a value."""
    if arg is None or isinstance(arg, int | float):
        return arg
    try:
        text = arg if isinstance(arg, str) else str(arg)
    except Exception:  # its own str() fails: the handler will say so
        return arg
    redacted = redact(text)
    return arg if redacted is text or redacted == text else redacted
