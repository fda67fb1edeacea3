"""The one JSON error envelope, produced here and nowhere else:

    {"error": {"code": "prompt_queue_full", "message": "…", "hint": "…" | null}}

WebSocket errors use the same codes: ``{"type": "error", "code", "message", "hint"}``.

A store failure (``StoreError``: the database down, locked or refusing) answers in the same
envelope — 503 ``store_unavailable`` with ``Retry-After`` when trying again may work — while the
server log gets the driver's error, which the answer never shows.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from openinspect.errors import OpenInspectError, StoreError

log = logging.getLogger(__name__)

STORE_RETRY_AFTER_S = 1
"""What ``Retry-After`` says when the database is unavailable: soon, a client backs off itself."""
_HTTP_CODES = {
    400: "bad_request",  # e.g. a body that is not UTF-8
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media",
    422: "invalid_input",
    429: "rate_limited",
}


class ErrorBody(BaseModel):
    code: str
    message: str
    hint: str | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router: each status answers the error envelope. The
    OpenAPI document is the contract (schemathesis checks every answer against it), so a
    status a route can return is listed here or on the route."""
    return {status: {"model": ErrorEnvelope} for status in statuses}


def document_common_answers(app: FastAPI) -> None:
    """Add to the OpenAPI document the answers every operation can meet by construction, so no
    route has to repeat them: 401 where a token is needed (and 503: the token is read from the
    database, which may be unreachable), 422 where there is input, and for a body 400 (not
    UTF-8), 413 (over the body cap) and 422 (not the expected shape)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        ref = _envelope_ref(document)
        for item in document.get("paths", {}).values():
            for operation in item.values():
                statuses = []
                if operation.get("security"):
                    statuses += [401, 503]
                if operation.get("parameters"):
                    statuses.append(422)
                if operation.get("requestBody"):
                    statuses += [400, 413, 422]
                answers = operation.setdefault("responses", {})
                for status in statuses:
                    answers.setdefault(
                        str(status),
                        {
                            "description": HTTPStatus(status).phrase,
                            "content": {"application/json": {"schema": ref}},
                        },
                    )
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _envelope_ref(document: dict[str, Any]) -> dict[str, str]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorEnvelope" not in schemas:
        model = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(model.pop("$defs", {}))
        schemas["ErrorEnvelope"] = model
    return {"$ref": "#/components/schemas/ErrorEnvelope"}


def envelope(code: str, message: str, hint: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "hint": hint}}


def _response(
    status: int,
    code: str,
    message: str,
    hint: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(envelope(code, message, hint), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OpenInspectError)
    async def _ours(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OpenInspectError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, StoreError):
            log.warning("store error answered %d %s", exc.status, exc.code, exc_info=exc)
            if exc.retryable:
                headers = {"Retry-After": str(STORE_RETRY_AFTER_S)}
        return _response(exc.status, exc.code, exc.message, exc.hint, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
            for e in exc.errors()[:5]
        )
        return _response(
            422,
            "invalid_input",
            f"Invalid request: {problems}",
            "See /api/openapi.json for the expected shape",
        )

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return _response(
            exc.status_code,
            _HTTP_CODES.get(exc.status_code, "http_error"),
            str(exc.detail),
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _response(500, "internal", "Internal server error", "The server log has the details")
