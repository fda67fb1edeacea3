"""A text field's ``pattern`` means the same to the OpenAPI document's readers and to the server.

In Python's regexes (and so in the JSON Schema generators schemathesis uses) ``$`` also matches
before a final newline; pydantic's engine does not. A value the document calls valid must not be
refused, so such fields are trimmed before the pattern is checked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from openinspect.api.app import create_app
from openinspect.api.people_schemas import LoginLinkRedeem, MeUpdate, UserCreate
from openinspect.api.schemas import RepoCreate
from openinspect.settings import Settings

CASES: list[tuple[type[BaseModel], dict[str, Any], str]] = [
    (RepoCreate, {"name": "acme/app\n", "url": "/srv/app"}, "name"),
    (UserCreate, {"name": "Ada\n", "email": "ada@example.com"}, "name"),
    (UserCreate, {"name": "Ada", "email": "ada@example.com\n"}, "email"),
    (MeUpdate, {"git_name": "Ada Lovelace\n"}, "git_name"),
    (MeUpdate, {"git_email": "ada@example.com\n"}, "git_email"),
    (LoginLinkRedeem, {"code": "oil_abc\n"}, "code"),
]


def _pattern(model: type[BaseModel], field: str) -> str:
    prop = model.model_json_schema()["properties"][field]
    schemas = prop.get("anyOf", [prop])
    return next(s["pattern"] for s in schemas if "pattern" in s)


@pytest.mark.parametrize(("model", "body", "field"), CASES)
def test_a_value_the_document_allows_is_accepted(
    model: type[BaseModel], body: dict[str, Any], field: str
) -> None:
    assert re.search(_pattern(model, field), body[field])  # valid by the document
    parsed = model.model_validate(body)
    assert getattr(parsed, field) == body[field].strip()


@pytest.mark.parametrize(("model", "body", "field"), CASES)
def test_a_value_the_document_refuses_is_refused(
    model: type[BaseModel], body: dict[str, Any], field: str
) -> None:
    bad = {**body, field: "<x>\n@"}
    assert not re.search(_pattern(model, field), bad[field])
    with pytest.raises(ValidationError):
        model.model_validate(bad)


TRICKY = ["\x85", "\xa0", "\u2003", "\u2028", "\ufeff", "\x1c", "\t", "\n", " "]


def _accepted(model: type[BaseModel], body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("char", TRICKY)
@pytest.mark.parametrize(("model", "body", "field"), CASES)
def test_the_document_and_the_server_agree_on_space_like_characters(
    model: type[BaseModel], body: dict[str, Any], field: str, char: str
) -> None:
    """JSON Schema's ``\\s`` is not Python's (U+0085), so patterns name what they refuse: what
    the document allows is accepted, and inside a value (where trimming does not reach) what it
    refuses is refused. (Around a value the server is kinder: it trims.)"""
    value = body[field].strip()
    pattern = _pattern(model, field)
    for probe in (value + char, char + value):
        if re.search(pattern, probe):
            assert _accepted(model, {**body, field: probe}), repr(probe)
    inside = value[:1] + char + value[1:]
    document = re.search(pattern, inside) is not None
    assert _accepted(model, {**body, field: inside}) == document, repr(inside)


# Classes whose members differ between regex engines (JSON Schema's ECMA-262, Python's re, the
# Rust engine pydantic checks with): ``\\s`` is or is not U+0085, ``\\d``/``\\w`` are ASCII or not.
_ENGINE_DEPENDENT = re.compile(r"(?<!\\)(?:\\\\)*\\[sSdDwWbB]")


def test_no_pattern_in_the_document_uses_an_engine_dependent_class() -> None:
    document = create_app(Settings(home=Path("/nonexistent"))).openapi()
    patterns: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                patterns.append(node["pattern"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(document)
    assert patterns, "the document states no pattern at all"
    assert [p for p in patterns if _ENGINE_DEPENDENT.search(p)] == [], json.dumps(patterns)
