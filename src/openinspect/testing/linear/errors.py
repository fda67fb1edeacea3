"""Linear's GraphQL error shapes, so a client's error handling runs against the real thing.

Linear answers ``{"errors": [{message, path?, locations?, extensions: {code, type, statusCode,
userError, userPresentableMessage?}}], "data": …}``. The codes used here, from Linear's own
answers as client code in the wild records them:

- ``AUTHENTICATION_ERROR`` (HTTP 401): no token, an unknown, revoked or expired one.
- ``INPUT_ERROR`` (HTTP 200, ``statusCode`` 400): ``Entity not found: Issue`` /
  ``conflict on insert of AgentActivity`` (a create with an ``id`` that exists).
- ``INVALID_INPUT`` (HTTP 200, ``statusCode`` 400): ``Argument Validation Error`` on a value the
  schema cannot check (an activity's ``content``).
- ``FORBIDDEN`` (HTTP 200, ``statusCode`` 403): the token lacks the scope.
- ``GRAPHQL_PARSE_FAILED`` / ``GRAPHQL_VALIDATION_FAILED`` (HTTP 400): the document does not parse
  or does not match the schema (``schema.graphql``).
- ``RATELIMITED`` and ``INTERNAL_SERVER_ERROR``: only when a test injects them (``fail_next``).

Messages name the kind of thing, never a value the caller sent (no echo), except the id of an
entity the caller created, which Linear's own "already exists" message names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

AUTH_MESSAGE = "Authentication required, not authenticated"
AUTH_HINT = "You need to authenticate to access this operation."


@dataclass
class LinearError(Exception):
    """Raised by a resolver; becomes one entry of ``errors`` with these extensions."""

    message: str
    code: str = "INPUT_ERROR"
    user_message: str | None = None
    status_code: int = 400
    type: str = "invalid input"

    def __str__(self) -> str:
        return self.message

    def extensions(self) -> dict[str, Any]:
        ext: dict[str, Any] = {
            "code": self.code,
            "type": self.type,
            "statusCode": self.status_code,
            "userError": self.status_code < 500,
        }
        if self.user_message is not None:
            ext["userPresentableMessage"] = self.user_message
        return ext


def not_found(entity: str) -> LinearError:
    return LinearError(
        f"Entity not found: {entity}", user_message=f"Could not find referenced {entity}."
    )


def already_exists(entity: str, entity_id: str) -> LinearError:
    return LinearError(
        f"conflict on insert of {entity}",
        user_message=f"Entity {entity} with id {entity_id} already exists.",
    )


def invalid(user_message: str) -> LinearError:
    return LinearError("Argument Validation Error", code="INVALID_INPUT", user_message=user_message)


def forbidden(scope: str) -> LinearError:
    return LinearError(
        f"Invalid scope: `{scope}` required",
        code="FORBIDDEN",
        status_code=403,
        type="forbidden",
        user_message=f"The token needs the {scope} scope for this operation.",
    )


def entry(message: str, extensions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"message": message, **extra, "extensions": extensions}


def response(
    status: int,
    message: str,
    code: str,
    *,
    type_: str = "graphql error",
    user_message: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An answer made of one error and no data (auth, parse, validation, injected failures)."""
    error = LinearError(message, code, user_message, status, type_)
    return JSONResponse(
        {"errors": [entry(message, error.extensions())]}, status_code=status, headers=headers
    )


def unauthenticated() -> JSONResponse:
    return response(
        401,
        AUTH_MESSAGE,
        "AUTHENTICATION_ERROR",
        type_="authentication error",
        user_message=AUTH_HINT,
    )
