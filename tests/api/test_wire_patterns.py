"""A text field's ``pattern`` means the same to the OpenAPI document's readers and to the server.

In Python's regexes (and so in the JSON Schema generators schemathesis uses) ``$`` also matches
before a final newline; pydantic's engine does not. A value the document calls valid must not be
refused, so such fields are trimmed before the pattern is checked.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from openinspect.api.people_schemas import LoginLinkRedeem, MeUpdate, UserCreate
from openinspect.api.schemas import RepoCreate

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
