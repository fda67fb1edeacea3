"""The executable schema: ``schema.graphql`` (a subset of Linear's SDL) with the fake's
resolvers and scalars attached.

Scalars as Linear serves them: ``DateTime`` and ``TimelessDate`` are ISO strings, ``JSON`` is any
JSON value, ``JSONObject`` a JSON object. One leniency, on purpose: ``JSONObject`` also takes a
list, because Linear's own docs send ``AgentSessionUpdateInput.plan`` (typed ``JSONObject``) as a
list of steps; the resolvers check the shape of every ``JSONObject`` they read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
    value_from_ast_untyped,
)

from openinspect.testing.linear import mutations, views

CONTENT_TYPES = {
    "thought": "AgentActivityThoughtContent",
    "action": "AgentActivityActionContent",
    "elicitation": "AgentActivityElicitationContent",
    "response": "AgentActivityResponseContent",
    "error": "AgentActivityErrorContent",
    "prompt": "AgentActivityPromptContent",
}


def sdl() -> str:
    """The schema's text (``schema.graphql`` next to this module)."""
    return resources.files(__package__).joinpath("schema.graphql").read_text(encoding="utf-8")


def _iso(value: Any) -> str:
    if not isinstance(value, str):
        raise GraphQLError("DateTime cannot represent a non-string value.")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise GraphQLError("DateTime expects an ISO 8601 date and time.") from None
    return value


def _object(value: Any) -> Any:
    if not isinstance(value, dict | list):
        raise GraphQLError("JSONObject expects a JSON object.")
    return value


def _scalar(schema: GraphQLSchema, name: str, parse: Callable[[Any], Any]) -> None:
    scalar = schema.type_map[name]
    assert isinstance(scalar, GraphQLScalarType)
    # graphql-core's way for an SDL-first schema: set the built scalar's coercers.
    scalar.coerce_output_value = lambda value: value
    scalar.coerce_input_value = parse
    scalar.coerce_input_literal = lambda node: parse(value_from_ast_untyped(node))


def _content_type(value: Any, _info: Any, _type: Any) -> str:
    return CONTENT_TYPES[value["type"]]


@functools.cache
def executable_schema() -> GraphQLSchema:
    """Built once per process: the SDL never changes at run time."""
    schema = build_schema(sdl())
    _scalar(schema, "DateTime", _iso)
    _scalar(schema, "TimelessDate", _iso)
    _scalar(schema, "JSON", lambda value: value)
    _scalar(schema, "JSONObject", _object)
    for type_name, resolvers in (("Query", views.QUERY), ("Mutation", mutations.MUTATION)):
        root = schema.type_map[type_name]
        assert isinstance(root, GraphQLObjectType)
        missing = set(root.fields) ^ set(resolvers)
        if missing:  # a field in the SDL without a resolver, or the reverse
            raise RuntimeError(f"{type_name} fields and resolvers differ: {sorted(missing)}")
        for field_name, resolve in resolvers.items():
            root.fields[field_name].resolve = resolve
    content = schema.type_map["AgentActivityContent"]
    assert isinstance(content, GraphQLUnionType)
    content.resolve_type = _content_type
    return schema
