"""405 with ``Allow`` for a known path asked with the wrong method.

The web app is mounted at ``/`` and so matches every path fully; Starlette's router then hands
it a ``DELETE /api/repos`` before it would have answered 405 for the ``/api/repos`` route that
matched only by path. This looks at the API's own routes first.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from openinspect.api.errors import envelope


class MethodNotAllowed:
    """Answer 405 (the error envelope) with the methods the path takes, when an API route
    matches the path but not the method."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api
        self._operations: list[tuple[re.Pattern[str], frozenset[str]]] | None = None

    def _paths(self) -> list[tuple[re.Pattern[str], frozenset[str]]]:
        if self._operations is None:
            operations = []
            for path, item in self.api.openapi().get("paths", {}).items():
                methods = {m.upper() for m in item}
                if "GET" in methods:
                    methods.add("HEAD")
                operations.append((compile_path(path)[0], frozenset(methods)))
            self._operations = operations
        return self._operations

    def allowed(self, method: str, path: str) -> set[str] | None:
        """The methods the path takes, or None when it takes ``method`` (or is not the API's)."""
        methods: set[str] = set()
        for pattern, taken in self._paths():
            if pattern.match(path):
                if method in taken:
                    return None
                methods |= taken
        return methods or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            methods = self.allowed(scope["method"], scope["path"])
            if methods is not None:
                allow = ", ".join(sorted(methods))
                response = JSONResponse(
                    envelope(
                        "method_not_allowed",
                        f"{scope['method']} is not allowed on {scope['path']}",
                        f"Use {allow}",
                    ),
                    status_code=405,
                    headers={"Allow": allow},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
