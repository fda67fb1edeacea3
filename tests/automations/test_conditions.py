"""JSONPath conditions: a table of (conditions, payload) → fires or not, with the reason.

The payload below is an alert-like document; each case names the conditions and whether the
automation fires. Invalid paths and patterns are refused when the condition is made."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import ValidationError

from openinspect.automations.conditions import (
    CONDITIONS_MAX,
    PATH_MAX,
    SUBJECT_MAX,
    Condition,
    evaluate,
    json_equal,
    select,
)
from openinspect.domain import automations as domain

PAYLOAD: dict[str, Any] = {
    "action": "created",
    "count": 3,
    "ratio": 0.5,
    "enabled": True,
    "nothing": None,
    "title": "TypeError: cannot read 'id' of undefined",
    "tags": ["prod", "web", "p1"],
    "labels": {"team": "payments", "severity": "high"},
    "items": [
        {"name": "a", "level": "error", "count": 10, "tags": ["x"]},
        {"name": "b", "level": "warning", "count": 2, "tags": []},
        {"name": "c", "level": "error", "count": 1, "tags": ["x", "y", "z"]},
    ],
    "project": {"slug": "web-app", "owner": {"name": "ops"}},
}

# (path, op, value or ..., fires on PAYLOAD)
NO = ...
CASES: list[tuple[str, str, Any, bool]] = [
    # exists: at least one node selected
    ("$.action", "exists", NO, True),
    ("$.missing", "exists", NO, False),
    ("$.nothing", "exists", NO, True),  # a null is a node
    ("$.items[5]", "exists", NO, False),
    ("$.items[-1].name", "exists", NO, True),
    ("$.items[?@.level == 'error']", "exists", NO, True),
    ("$.items[?@.level == 'fatal']", "exists", NO, False),
    ("$.items[?@.count > 5]", "exists", NO, True),
    ("$.items[?@.count >= 10 && @.level == 'error']", "exists", NO, True),
    ("$.items[?@.count < 1]", "exists", NO, False),
    ("$.items[?@.count != 10 || @.name == 'a']", "exists", NO, True),
    ("$.items[?!@.tags[0]]", "exists", NO, True),  # an item with no first tag
    ("$.items[?length(@.tags) > 2]", "exists", NO, True),
    ("$.items[?length(@.tags) > 3]", "exists", NO, False),
    ("$.items[?count(@.tags[*]) == 0]", "exists", NO, True),
    ("$.items[?match(@.name, '[ab]')]", "exists", NO, True),
    ("$.items[?match(@.name, 'a.')]", "exists", NO, False),  # match() is the whole string
    ("$[?search(@, 'cannot read')]", "exists", NO, True),
    ("$[?search(@, '^cannot')]", "exists", NO, False),
    ("$.items[?value(@.tags[0]) == 'x']", "exists", NO, True),
    ("$.items[?@.count > $.count]", "exists", NO, True),  # a comparison with the root
    ("$.labels[?@ == 'high']", "exists", NO, True),
    ("$..owner.name", "exists", NO, True),
    ("$..[?@.slug == 'web-app']", "exists", NO, True),
    # equals: some selected node equals the value, as JSON has it
    ("$.action", "equals", "created", True),
    ("$.action", "equals", "Created", False),
    ("$.count", "equals", 3, True),
    ("$.count", "equals", 3.0, True),
    ("$.count", "equals", "3", False),  # a string is not a number
    ("$.ratio", "equals", 0.5, True),
    ("$.enabled", "equals", True, True),
    ("$.enabled", "equals", 1, False),  # true is not 1
    ("$.count", "equals", True, False),
    ("$.tags", "equals", "prod", False),  # an array is not a scalar
    ("$.labels", "equals", "payments", False),
    ("$.missing", "equals", "x", False),
    ("$..name", "equals", "c", True),  # several nodes: any of them
    ("$..name", "equals", "ops", True),
    ("$..name", "equals", "d", False),
    ("$.items[*].level", "equals", "warning", True),
    ("$.items[?@.level == 'error'].name", "equals", "b", False),
    ("$.items[?@.level == 'error'].name", "equals", "c", True),
    ("$['labels']['team']", "equals", "payments", True),
    ("$.items[0:2].count", "equals", 1, False),  # slices
    ("$.items[1:].count", "equals", 1, True),
    # contains: substring, array element, object key
    ("$.title", "contains", "cannot read", True),
    ("$.title", "contains", "CANNOT", False),
    ("$.tags", "contains", "web", True),
    ("$.tags", "contains", "we", False),  # an element, not a substring of one
    ("$.labels", "contains", "team", True),
    ("$.labels", "contains", "payments", False),  # keys, not values
    ("$.count", "contains", 3, False),  # a number contains nothing
    ("$.title", "contains", 3, False),
    ("$.items[*].tags", "contains", "z", True),
    ("$.items[*].name", "contains", "b", True),
    ("$.nothing", "contains", "x", False),
    # matches: a regular-expression search in some selected string
    ("$.title", "matches", r"^TypeError\b", True),
    ("$.title", "matches", r"(?i)^typeerror", True),
    ("$.title", "matches", r"^ReferenceError", False),
    ("$.title", "matches", r"'\w+'", True),
    ("$..name", "matches", r"^o", True),
    ("$.count", "matches", r"3", False),  # a number is not a string
    ("$.tags", "matches", r"prod", False),  # nor is an array
    ("$.items[*].level", "matches", r"^warn", True),
    ("$.project.slug", "matches", r"^[a-z]+-[a-z]{3}$", True),
]


@pytest.mark.parametrize(("path", "op", "value", "fires"), CASES)
def test_the_table_of_conditions(path: str, op: str, value: Any, fires: bool) -> None:
    fields: dict[str, Any] = {"path": path, "op": op}
    if value is not NO:
        fields["value"] = value
    condition = Condition(**fields)
    decision = evaluate([condition], PAYLOAD)
    assert decision.matched is fires, decision.summary
    if fires:
        assert decision.failures == () and decision.summary is None
    else:
        (failure,) = decision.failures
        assert failure.number == 1
        assert decision.summary is not None
        assert decision.summary.startswith(f"condition 1 ({path} {op}")


def test_all_conditions_must_hold_and_every_failure_is_named() -> None:
    conditions = [
        Condition(path="$.action", op="equals", value="created"),
        Condition(path="$.items[*].level", op="equals", value="fatal"),
        Condition(path="$.tags", op="contains", value="web"),
        Condition(path="$.missing", op="exists"),
    ]
    decision = evaluate(conditions, PAYLOAD)
    assert not decision.matched
    assert [f.number for f in decision.failures] == [2, 4]
    assert decision.failures[0].reason == 'selected "error", "warning", "error"'
    assert decision.failures[1].reason == "selected nothing"
    assert decision.summary == (
        'condition 2 ($.items[*].level equals "fatal") did not match: '
        'selected "error", "warning", "error" (and 1 more)'
    )
    assert evaluate(conditions[::2][:1] + conditions[2:3], PAYLOAD).matched
    assert evaluate([], PAYLOAD).matched  # no condition: fires


def test_the_reason_previews_a_few_nodes_each_cut_short() -> None:
    payload = {"xs": [{"n": "v" * 200} for _ in range(5)]}
    (failure,) = evaluate([Condition(path="$.xs[*].n", op="equals", value="w")], payload).failures
    assert failure.reason.endswith(" and 2 more")
    assert failure.reason.count("…") == 3
    assert len(failure.reason) < 250


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("action", "is not an RFC 9535 JSONPath"),  # no root
        ("$.a b", "is not an RFC 9535 JSONPath"),
        (" $.action", "leading whitespace"),
        ("$.action ", "is not an RFC 9535 JSONPath"),
        ("$[?@.a == ]", "is not an RFC 9535 JSONPath"),
        ("$[", "is not an RFC 9535 JSONPath"),
        ("$.items[?@..name == 'a']", "non-singular query is not comparable"),
        ("$.items[?length(@.tags, 1)]", "is not an RFC 9535 JSONPath"),
        ("$.items[?typeof(@) == 'x']", "is not an RFC 9535 JSONPath"),  # a library extension
        ("$.a | $.b", "is not an RFC 9535 JSONPath"),  # the library's union, not RFC 9535
        ("$.a[?match(@, '((a{100}){100}){100}')]", "multiply to at most"),
        ("$" + ".a" * (PATH_MAX // 2), "at most 500 characters"),
        ("$..a..b", "2 descendant segments"),
        ("$..a[?@..b]", "2 descendant segments"),
        ("$.a[?count(@[?@..x]) > 0 && @..y]", "2 descendant segments"),
    ],
)
def test_an_invalid_path_is_refused_when_the_condition_is_made(path: str, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        Condition(path=path, op="exists")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"op": "exists", "value": "x"}, "'exists' takes no value"),
        ({"op": "equals"}, "'equals' needs a value"),
        ({"op": "contains"}, "'contains' needs a value"),
        ({"op": "matches"}, "'matches' takes a regular expression"),
        ({"op": "matches", "value": 3}, "'matches' takes a regular expression"),
        ({"op": "matches", "value": "("}, "does not compile"),
        ({"op": "matches", "value": "a" * 257}, "at most 256 characters"),
        ({"op": "matches", "value": "(?:a{1000}){1000}"}, "multiply to at most 1000"),
        ({"op": "matches", "value": "(?:abc){e<=2}"}, "is not a counted repetition"),
        ({"op": "equals", "value": ["a"]}, "value"),  # scalars only
        ({"op": "above", "value": 1}, "op"),
    ],
)
def test_op_and_value_must_agree(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        Condition(path="$.x", **fields)


def test_a_list_of_conditions_is_capped_by_the_automation() -> None:
    one = domain.Condition(path="$.a", op="exists")
    assert CONDITIONS_MAX == 20
    fields = domain.Automation.model_fields["conditions"]
    assert any(getattr(m, "max_length", None) == CONDITIONS_MAX for m in fields.metadata)
    assert evaluate([one] * CONDITIONS_MAX, {"a": 1}).matched


def test_a_stored_condition_that_no_longer_compiles_fails_with_the_reason() -> None:
    # Stored before the checks above existed: evaluation reports it rather than raising.
    stored = domain.Condition(path="$.a b", op="exists")
    (failure,) = evaluate([stored], {"a": 1}).failures
    assert "is not an RFC 9535 JSONPath" in failure.reason


def test_matches_only_searches_strings_up_to_the_cap() -> None:
    condition = Condition(path="$.s", op="matches", value="x$")
    assert evaluate([condition], {"s": "a" * (SUBJECT_MAX - 1) + "x"}).matched
    assert not evaluate([condition], {"s": "a" * SUBJECT_MAX + "x"}).matched


def test_a_catastrophic_pattern_runs_out_of_time_instead_of_hanging() -> None:
    condition = Condition(path="$.s", op="matches", value="^(a|aa)+$")
    started = time.monotonic()
    (failure,) = evaluate([condition], {"s": "a" * 60 + "b"}).failures
    assert time.monotonic() - started < 1
    assert "ran longer than" in failure.reason
    # The same pattern in a path's search() gives no match rather than a hang.
    rfc = Condition(path="$[?search(@, '^(a|aa)+$')]", op="exists")
    started = time.monotonic()
    assert not evaluate([rfc], {"s": "a" * 60 + "b"}).matched
    assert time.monotonic() - started < 1


def test_a_costly_path_on_a_big_payload_stops_at_the_visit_cap() -> None:
    payload = {"a": [{"b": [{"c": i} for i in range(40)]} for _ in range(40)]}
    condition = Condition(path="$..[?@.c == 39]", op="exists")
    assert evaluate([condition], payload).matched
    nowhere = Condition(path="$..[?@.zzz]", op="exists")  # every node looked into, for nothing
    assert evaluate([nowhere], payload).failures[0].reason == "selected nothing"
    (failure,) = evaluate([nowhere], payload, visits=1_000).failures
    assert "too large or the path too costly" in failure.reason
    (failure,) = evaluate([Condition(path="$..zzz", op="exists")], payload, budget_s=0).failures
    assert "too large or the path too costly" in failure.reason


def test_json_equality() -> None:
    assert json_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not json_equal({"a": [1, True]}, {"a": [1, 1]})
    assert not json_equal([1, 2], [1, 2, 3])
    assert not json_equal({"a": 1}, {"b": 1})
    assert not json_equal(None, False)
    assert json_equal(None, None)


def test_select_takes_values_out_of_a_payload() -> None:
    assert select("$.items[?@.level == 'error'].name", PAYLOAD) == ["a", "c"]
    assert select("$..name", PAYLOAD, limit=2) == ["a", "b"]
    assert select("$.missing", PAYLOAD) == []
    with pytest.raises(ValueError, match="RFC 9535"):
        select("items", PAYLOAD)
