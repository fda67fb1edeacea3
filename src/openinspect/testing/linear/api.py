"""``POST /graphql`` as Linear answers it.

In order: the body is read (at most ``MAX_BODY_BYTES``); the bearer token is checked (401
``AUTHENTICATION_ERROR`` without a valid, unexpired, unrevoked one); the JSON body must be
``{query, variables?, operationName?}``; the document is parsed (capped in tokens and depth) and
validated against ``schema.graphql`` (400 with ``errors[]`` when it fails, so a typo in a
client's document fails loudly); an injected failure (``Failures``) answers instead when one is
queued for a top-level field of the document; else the document runs with the state's lock
held. Errors a resolver raises come back with HTTP 200, as Linear sends them. Every request is
recorded as an ``ApiCall``.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableDefinitionNode,
    execute,
    parse,
    print_ast,
    validate,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openinspect.testing.doors import Injected
from openinspect.testing.linear import errors
from openinspect.testing.linear.errors import LinearError
from openinspect.testing.linear.http import TooLarge, bearer, read_body
from openinspect.testing.linear.records import ApiCall, Token, TokenKind
from openinspect.testing.linear.schema import executable_schema
from openinspect.testing.linear.state import LinearState
from openinspect.testing.linear.views import Ctx

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_TOKENS = 5_000
MAX_DEPTH = 12
VARIABLE_ERROR = re.compile(r"^Variable '\$(\w+)' has invalid value(?: at (\S+))?: (.*)$", re.S)


@dataclass
class Failure:
    """An answer injected for the next call of a field (``FakeLinear.fail_next``)."""

    status: int
    code: str
    message: str
    apply: bool
    """Run the document first and then answer the failure (the answer is lost, the write is
    not): what a client sees when Linear commits and the connection drops."""


Failures = Injected[Failure]
"""Failures queued per top-level field (``FakeLinear.fail_next``)."""


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _depth(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            deepest = max(deepest, 1 + _depth(sel.selection_set, fragments, seen))
        elif isinstance(sel, InlineFragmentNode):
            deepest = max(deepest, _depth(sel.selection_set, fragments, seen))
        elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
            frag = fragments.get(sel.name.value)
            if frag is not None:
                inner = _depth(frag.selection_set, fragments, seen | {sel.name.value})
                deepest = max(deepest, inner)
    return deepest


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return ops[0] if len(ops) == 1 else None
    return next((op for op in ops if op.name is not None and op.name.value == name), None)


def _top_fields(op: OperationDefinitionNode | None) -> tuple[str, ...]:
    if op is None:
        return ()
    return tuple(s.name.value for s in op.selection_set.selections if isinstance(s, FieldNode))


def _request_message(error: GraphQLError) -> str:
    """graphql-core's message for a bad variable, without the value sent (no echo)."""
    match = VARIABLE_ERROR.match(error.message)
    if match is None:
        return error.message
    name, at, reason = match.groups()
    reason = re.sub(r"unknown field '.*?'(?=\.|$)", "an unknown field", reason.split(", found:")[0])
    enum = re.match(r"^Value .* does not exist in ('[^']+') enum", reason, re.S)
    if enum is not None:
        reason = f"not a value of the {enum.group(1)} enum"
    if "cannot represent" in reason:
        reason = reason.split(":")[0]
        node = error.nodes[0] if error.nodes else None
        if isinstance(node, VariableDefinitionNode) and not at:
            reason += f" (expected {print_ast(node.type)})"
    reason = reason.rstrip(".") + "."
    where = f" at {at}" if at else ""
    return f"Variable '${name}' has an invalid value{where}: {reason}"


def _entries(result: ExecutionResult) -> tuple[list[dict[str, Any]], int]:
    """The ``errors`` entries and the HTTP status the answer gets."""
    status = 200
    out: list[dict[str, Any]] = []
    for error in result.errors or []:
        original = error.original_error
        formatted: dict[str, Any] = dict(error.formatted)
        if isinstance(original, LinearError):
            formatted["extensions"] = original.extensions()
        elif error.path is None:  # a variable that did not coerce: the request is bad
            status = 400
            formatted["message"] = _request_message(error)
            formatted["extensions"] = LinearError(
                formatted["message"], "INVALID_INPUT", type="graphql error"
            ).extensions()
        else:  # a bug in the fake: say so loudly, name nothing of the request
            logger.error("fake Linear resolver failed", exc_info=original)
            status = 500
            formatted["message"] = "Internal server error"
            formatted["extensions"] = LinearError(
                "Internal server error", "INTERNAL_SERVER_ERROR", status_code=500, type="internal"
            ).extensions()
        out.append(formatted)
    return out, status


@dataclass
class _Call:
    """What is known of a request so far, for its ``ApiCall`` record."""

    kind: TokenKind
    op_name: str | None = None
    fields: tuple[str, ...] = ()
    variables: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)


@dataclass
class GraphQLApi:
    state: LinearState
    failures: Failures

    def token_for(self, request: Request) -> tuple[TokenKind, Token | None]:
        """Whose token the request carries (``valid``) or why none counts."""
        value = bearer(request)
        if value is None:
            return "missing", None
        with self.state.lock:
            token = self.state.tokens.get(value)
        if token is None or token.revoked:
            return "invalid", None
        if token.expires_at <= time.time():
            return "expired", None
        return "valid", token

    async def endpoint(self, request: Request) -> Response:
        kind, token = self.token_for(request)
        call = _Call(kind)
        try:
            raw = await read_body(request, MAX_BODY_BYTES)
        except TooLarge:
            return self._answer(
                call, errors.response(413, "Request entity too large", "PAYLOAD_TOO_LARGE")
            )
        if token is None:
            return self._answer(call, errors.unauthenticated())
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        query = body.get("query") if isinstance(body, dict) else None
        variables = (body.get("variables") or {}) if isinstance(body, dict) else None
        call.op_name = body.get("operationName") if isinstance(body, dict) else None
        if (
            not isinstance(query, str)
            or not isinstance(variables, dict)
            or not isinstance(call.op_name, str | None)
        ):
            call.op_name = None
            message = (
                "Expected a JSON body {query: string, variables?: object, operationName?: string}"
            )
            return self._answer(call, errors.response(400, message, "BAD_REQUEST"))
        call.variables = variables
        return self._answer(call, self._run(call, token, query))

    def _run(self, call: _Call, token: Token, query: str) -> JSONResponse:
        schema = executable_schema()
        try:
            document = parse(query, max_tokens=MAX_TOKENS)
        except GraphQLError as exc:
            return errors.response(400, exc.message, "GRAPHQL_PARSE_FAILED")
        problems = validate(schema, document)
        op = _operation(document, call.op_name)
        call.fields = _top_fields(op)
        if problems:
            invalid = LinearError("", "GRAPHQL_VALIDATION_FAILED", type="graphql error")
            entries = [
                errors.entry(
                    p.message,
                    invalid.extensions(),
                    locations=[loc.formatted for loc in p.locations or []],
                )
                for p in problems
            ]
            return JSONResponse({"errors": entries}, 400)
        if op is not None and _depth(op.selection_set, _fragments(document)) > MAX_DEPTH:
            message = f"Query is nested deeper than {MAX_DEPTH} levels"
            return errors.response(400, message, "GRAPHQL_VALIDATION_FAILED")
        failure = self.failures.take(*call.fields)
        if failure is None or failure.apply:
            with self.state.lock:
                result = execute(
                    schema,
                    document,
                    context_value=Ctx(self.state, token),
                    variable_values=call.variables,
                    operation_name=call.op_name,
                )
            assert isinstance(result, ExecutionResult)  # every resolver is synchronous
            if failure is None:
                entries, status = _entries(result)
                answer = (
                    {"errors": entries, "data": result.data} if entries else {"data": result.data}
                )
                return JSONResponse(answer, status)
        assert failure is not None
        headers = {}
        if failure.status == 429:
            reset_ms = int((time.time() + 1) * 1000)
            headers = {
                "X-RateLimit-Requests-Remaining": "0",
                "X-RateLimit-Requests-Reset": str(reset_ms),
            }
        kind = "internal" if failure.status >= 500 else "ratelimited"
        return errors.response(
            failure.status, failure.message, failure.code, type_=kind, headers=headers
        )

    def _answer(self, call: _Call, response: JSONResponse) -> JSONResponse:
        """Record the call, then give the answer."""
        codes: tuple[str, ...] = ()
        try:
            payload = json.loads(bytes(response.body))
            codes = tuple(e["extensions"]["code"] for e in payload.get("errors") or [])
        except (ValueError, KeyError, TypeError):
            pass
        self.state.record_call(
            ApiCall(
                operation_name=call.op_name,
                fields=call.fields,
                variables=copy.deepcopy(call.variables),
                token_kind=call.kind,
                status=response.status_code,
                error_codes=codes,
                at=call.started,
            )
        )
        return response
