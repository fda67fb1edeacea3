"""Conditions on a webhook payload: RFC 9535 JSONPath queries, each with an op. Pure, no I/O.

    conditions = [Condition(path="$.action", op="equals", value="created"),
                  Condition(path="$.data.items[?@.level == 'error']", op="exists")]
    decision = evaluate(conditions, payload)
    decision.matched            # every condition holds
    decision.summary            # "condition 2 ($.data… exists) did not match: selected nothing"

A ``path`` is an RFC 9535 query, compiled by python-jsonpath in its strict (RFC 9535) mode, so
filters (``[?@.level == 'error']``), descendants (``$..name``), the standard functions
(``length()``, ``count()``, ``match()``, ``search()``, ``value()``) and comparisons all work and
anything outside the RFC (a missing ``$``, leading whitespace, the library's own extensions) is
refused. A path selects a list of nodes; the ops are decided over that list:

- ``exists``: at least one node is selected (``exists`` takes no value).
- ``equals``: some selected node equals ``value`` as JSON does: ``1 == 1.0``, but ``true`` is not
  ``1`` and ``"1"`` is not ``1``; an object or array never equals a scalar.
- ``contains``: some selected node contains ``value``: a string holds it as a substring, an array
  has an element equal to it, an object has it as a key.
- ``matches``: some selected string node contains a match of the regular expression ``value``
  (a search: anchor with ``^…$`` for a whole-string match).

Every condition must hold; :class:`Decision` lists the ones that did not, and why.

Bounds. The payload is the sender's, the conditions the automation owner's, so both are capped:
at most :data:`CONDITIONS_MAX` conditions, each path at most :data:`PATH_MAX` characters. Python
regular expressions backtrack, so a pattern like ``(a|aa)+$`` takes exponential time on a crafted
string, and nested counted repetitions (``((a{100}){100}){100}``) take seconds and hundreds of MB
just to compile. So a pattern (a ``matches`` value, or one in a path's ``match()``/``search()``) is
at most :data:`PATTERN_MAX` characters, the product of its counted repetitions' bounds at most
:data:`REPEAT_PRODUCT_MAX`, the ``regex`` package's fuzzy ``{e<=n}`` syntax is refused, and it is
only ever run on strings of at most :data:`SUBJECT_MAX` characters (a longer string does not
match), with the ``regex`` package's per-match timeout (:data:`MATCH_TIMEOUT_S`; a match that runs
out of time is no match). The whole evaluation makes at most :data:`VISITS_MAX` item lookups,
comparisons and matches and runs at most :data:`EVALUATE_BUDGET_S`; past either, the conditions
not decided yet fail with that reason.
A path has at most :data:`DESCENDANTS_MAX` descendant segment (``..``), counting those in its
filters: a descendant search inside another one costs the payload's size times its depth. At
most :data:`PATTERNS_CACHED` compiled patterns and :data:`PATHS_CACHED` compiled paths are kept.
"""

from __future__ import annotations

import contextvars
import functools
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self

import regex
from jsonpath import JSONPath, JSONPathEnvironment
from jsonpath.exceptions import JSONPathError
from jsonpath.filter import BaseExpression, FilterQuery, FunctionExtension, StringLiteral
from jsonpath.function_extensions import Match as _RfcMatch
from jsonpath.function_extensions import Search as _RfcSearch
from jsonpath.segments import JSONPathRecursiveDescentSegment, JSONPathSegment
from jsonpath.selectors import Filter
from pydantic import field_validator, model_validator

from openinspect.domain import automations as domain

PATH_MAX = domain.JSONPATH_MAX
CONDITIONS_MAX = domain.CONDITIONS_MAX
PATTERN_MAX = 256
REPEAT_PRODUCT_MAX = 1_000
SUBJECT_MAX = 10_000
MATCH_TIMEOUT_S = 0.05
VISITS_MAX = 200_000
DESCENDANTS_MAX = 1
EVALUATE_BUDGET_S = 1.0
PATTERNS_CACHED = 256
PATHS_CACHED = 512
_PREVIEW_CHARS = 60
_PREVIEW_NODES = 3

_COUNTED = regex.compile(r"(?<!\\)\{([^{}]*)\}")
_BOUNDS = regex.compile(r"^\s*(\d*)\s*(?:,\s*(\d*)\s*)?$")


class _OutOfBudget(Exception):
    """The evaluation visited too many nodes or ran too long."""


@dataclass
class _Budget:
    deadline: float
    visits_left: int


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "condition_budget", default=None
)


def _spend() -> float:
    """Count one node visit; return the seconds left. Raise _OutOfBudget past either cap."""
    budget = _budget.get()
    if budget is None:
        return MATCH_TIMEOUT_S
    budget.visits_left -= 1
    left = budget.deadline - time.monotonic()
    if budget.visits_left < 0 or left <= 0:
        raise _OutOfBudget
    return left


def check_pattern(pattern: str) -> regex.Pattern[str]:
    """Compile ``pattern`` if it is within the caps above; else raise ValueError saying why."""
    if len(pattern) > PATTERN_MAX:
        raise ValueError(
            f"a regular expression is at most {PATTERN_MAX} characters, this one has {len(pattern)}"
        )
    product = 1
    for found in _COUNTED.finditer(pattern):
        bounds = _BOUNDS.match(found.group(1))
        if bounds is None or not (bounds.group(1) or bounds.group(2)):
            raise ValueError(
                f"{found.group(0)!r} is not a counted repetition like {{3}} or {{1,5}}; "
                "escape a literal brace as \\{"
            )
        product *= max(int(bounds.group(1) or 0), int(bounds.group(2) or 0), 1)
    if product > REPEAT_PRODUCT_MAX:
        raise ValueError(
            f"the counted repetitions in a regular expression may multiply to at most "
            f"{REPEAT_PRODUCT_MAX}; these multiply to {product}"
        )
    return _compile_pattern(pattern)


@functools.lru_cache(maxsize=PATTERNS_CACHED)
def _compile_pattern(pattern: str) -> regex.Pattern[str]:
    try:
        return regex.compile(pattern, regex.VERSION0)
    except regex.error as exc:
        raise ValueError(f"the regular expression does not compile: {exc}") from exc


class _Timeout(Exception):
    """A regular expression ran out of its time."""


def _search(pattern: regex.Pattern[str], subject: str, *, whole: bool = False) -> bool:
    """Run ``pattern`` on ``subject`` within the caps; raise _Timeout if it ran out of time."""
    if len(subject) > SUBJECT_MAX:
        return False
    timeout_s = min(MATCH_TIMEOUT_S, _spend())
    try:
        found = (pattern.fullmatch if whole else pattern.search)(subject, timeout=timeout_s)
    except TimeoutError as exc:
        raise _Timeout from exc
    return found is not None


class _BoundedMatch(_RfcMatch):
    """RFC 9535 ``match()`` with this module's pattern caps and timeout (no match past them)."""

    def __call__(self, value: object, pattern: object) -> bool:
        return _rfc_regex(value, pattern, whole=True)


class _BoundedSearch(_RfcSearch):
    """RFC 9535 ``search()`` with this module's pattern caps and timeout."""

    def __call__(self, value: object, pattern: object) -> bool:
        return _rfc_regex(value, pattern, whole=False)


def _rfc_regex(value: object, pattern: object, *, whole: bool) -> bool:
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    try:
        compiled = check_pattern(pattern)
        return _search(compiled, value, whole=whole)
    except (ValueError, _Timeout):
        return False  # RFC 9535: a pattern that cannot be used matches nothing


class _Env(JSONPathEnvironment):
    """Strict RFC 9535, with bounded ``match()``/``search()``; every item lookup and comparison
    costs one visit of the evaluation's budget (which is how a costly filter is stopped)."""

    def setup_function_extensions(self) -> None:
        super().setup_function_extensions()
        self.function_extensions["match"] = _BoundedMatch()
        self.function_extensions["search"] = _BoundedSearch()

    def getitem(self, obj: Any, key: Any) -> Any:
        _spend()
        return super().getitem(obj, key)

    def compare(self, left: object, operator: str, right: object) -> bool:
        _spend()
        return super().compare(left, operator, right)


_ENV = _Env(strict=True)


@functools.lru_cache(maxsize=PATHS_CACHED)
def compile_path(path: str) -> JSONPath:
    """The compiled RFC 9535 query; ValueError (with the library's reason) if it is not one, or
    if a ``match()``/``search()`` pattern in it is over the caps."""
    if len(path) > PATH_MAX:
        raise ValueError(f"a JSONPath is at most {PATH_MAX} characters, this one has {len(path)}")
    try:
        compiled = _ENV.compile(path)
    except (JSONPathError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path!r} is not an RFC 9535 JSONPath: {reason}") from exc
    if not isinstance(compiled, JSONPath):  # a union or intersection of the library's own
        raise ValueError(f"{path!r} is not an RFC 9535 JSONPath: one query only")
    descendants = 0
    for part in _parts(compiled):
        if isinstance(part, JSONPathRecursiveDescentSegment):
            descendants += 1
        elif isinstance(part, FunctionExtension) and part.name in ("match", "search"):
            for arg in part.args:
                if isinstance(arg, StringLiteral):
                    check_pattern(arg.value)
    if descendants > DESCENDANTS_MAX:
        raise ValueError(
            f"{path!r} has {descendants} descendant segments (..); a condition may have "
            f"{DESCENDANTS_MAX}, as each one inside another searches the payload again"
        )
    return compiled


def _parts(path: JSONPath) -> Iterator[JSONPathSegment | BaseExpression]:
    """Every segment and filter expression of ``path``, those of its filters' queries too."""
    paths = [path]
    while paths:
        for segment in paths.pop().segments:
            yield segment
            stack: list[BaseExpression] = [
                s.expression for s in segment.selectors if isinstance(s, Filter)
            ]
            while stack:
                node = stack.pop()
                yield node
                if isinstance(node, FilterQuery):
                    paths.append(node.path)
                else:
                    stack.extend(node.children())


class Condition(domain.Condition):
    """:class:`openinspect.domain.automations.Condition` checked in full: the path compiles as
    RFC 9535 and a ``matches`` pattern compiles within the caps. The door that accepts
    conditions validates with this; :func:`evaluate` takes either."""

    @field_validator("path")
    @classmethod
    def _path_compiles(cls, path: str) -> str:
        compile_path(path)
        return path

    @model_validator(mode="after")
    def _pattern_compiles(self) -> Self:
        if self.op == "matches" and isinstance(self.value, str):
            check_pattern(self.value)
        return self


@dataclass(frozen=True)
class Failure:
    """One condition that did not hold: its 1-based ``number`` in the list, and why."""

    number: int
    condition: domain.Condition
    reason: str

    def describe(self) -> str:
        c = self.condition
        what = c.path + " " + c.op + ("" if c.op == "exists" else " " + _preview(c.value))
        return f"condition {self.number} ({what}) did not match: {self.reason}"


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`evaluate`: ``matched`` when ``failures`` is empty."""

    failures: tuple[Failure, ...] = ()

    @property
    def matched(self) -> bool:
        return not self.failures

    @property
    def summary(self) -> str | None:
        """The first failure described (and how many more), for a skipped run's reason."""
        if not self.failures:
            return None
        more = len(self.failures) - 1
        return self.failures[0].describe() + (f" (and {more} more)" if more else "")


def evaluate(
    conditions: Sequence[domain.Condition],
    payload: Any,
    *,
    budget_s: float = EVALUATE_BUDGET_S,
    visits: int = VISITS_MAX,
) -> Decision:
    """Decide every condition on ``payload`` (parsed JSON). No condition: matched. Never raises
    for the payload's sake: a path that no longer compiles, a pattern over the caps, or an
    evaluation out of budget is a failure with that reason."""
    budget = _Budget(deadline=time.monotonic() + budget_s, visits_left=visits)
    token = _budget.set(budget)
    failures: list[Failure] = []
    try:
        for number, condition in enumerate(conditions, start=1):
            reason = _decide(condition, payload)
            if reason is not None:
                failures.append(Failure(number, condition, reason))
    finally:
        _budget.reset(token)
    return Decision(tuple(failures))


def select(path: str, payload: Any, *, limit: int = 100) -> list[object]:
    """The values ``path`` selects in ``payload`` (the first ``limit``), within the same caps as
    :func:`evaluate`; [] when the evaluation runs out of budget. ValueError for a bad path. For
    a value taken out of a payload, such as a webhook's idempotency key."""
    compiled = compile_path(path)
    token = _budget.set(_Budget(time.monotonic() + EVALUATE_BUDGET_S, VISITS_MAX))
    try:
        found: list[object] = []
        for node in compiled.finditer(payload):
            found.append(node.obj)
            if len(found) >= limit:
                break
        return found
    except (_OutOfBudget, JSONPathError, RecursionError):
        return []
    finally:
        _budget.reset(token)


def _decide(condition: domain.Condition, payload: Any) -> str | None:
    """None if ``condition`` holds, else why not."""
    try:
        compiled = compile_path(condition.path)
        pattern = None
        if condition.op == "matches":
            pattern = check_pattern(str(condition.value))  # a str: domain.Condition checks
    except ValueError as exc:
        return str(exc)
    nodes: list[object] = []
    try:
        for node in compiled.finditer(payload):
            value = node.obj
            if _holds(condition, pattern, value):
                return None
            nodes.append(value)
    except _OutOfBudget:
        return "the payload is too large or the path too costly to search within the limits"
    except _Timeout:
        return f"the regular expression ran longer than {MATCH_TIMEOUT_S}s on a selected string"
    except (JSONPathError, RecursionError):
        return "the payload is nested too deeply to search"
    if not nodes:
        return "selected nothing"
    shown = ", ".join(_preview(v) for v in nodes[:_PREVIEW_NODES])
    more = f" and {len(nodes) - _PREVIEW_NODES} more" if len(nodes) > _PREVIEW_NODES else ""
    return f"selected {shown}{more}"


def _holds(condition: domain.Condition, pattern: regex.Pattern[str] | None, node: object) -> bool:
    op, value = condition.op, condition.value
    if op == "exists":
        return True
    if op == "equals":
        return json_equal(node, value)
    if op == "contains":
        if isinstance(node, str):
            return isinstance(value, str) and value in node
        if isinstance(node, list):
            return any(json_equal(item, value) for item in node)
        if isinstance(node, dict):
            return isinstance(value, str) and value in node
        return False
    assert pattern is not None
    return isinstance(node, str) and _search(pattern, node)


def json_equal(a: object, b: object) -> bool:
    """Equality as JSON has it: numbers by value (1 == 1.0), booleans apart from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _preview(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"
