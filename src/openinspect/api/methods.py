"""405 with ``Allow`` for a known path asked with the wrong method.

The web app is mounted at ``/`` and so matches every path fully; Starlette's router then hands
it a ``DELETE /api/repos`` before it would have answered 405 for the ``/api/repos`` route that
matched only by path. This looks at the API's own routes first.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from openinspect.api.errors import envelope

METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
"""The methods an ``Allow`` header can name."""


class MethodNotAllowed:
    """Answer 405 (the error envelope) with the methods the path takes, when an API route
    matches the path but not the method.

    It asks the API's routes themselves (Starlette's ``matches``: a full match, a path-only
    one, or none), as the router is about to: building the OpenAPI document to learn the
    routes cost the first request, often a load balancer's ``/healthz``, a second of start-up.
    """

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    def _routes(self) -> list[BaseRoute]:
        return [r for r in self.api.router.routes if not isinstance(r, Mount)]  # not the web app

    def allowed(self, scope: Scope) -> set[str] | None:
        """The methods the request's path takes, or None when it takes the request's method
        (or is not the API's)."""
        routes = self._routes()

        def takes(method: str) -> Match:
            best = Match.NONE
            for route in routes:
                match, _ = route.matches({**scope, "method": method})
                if match is Match.FULL:
                    return match
                best = Match.PARTIAL if match is Match.PARTIAL else best
            return best

        method = scope["method"]
        found = takes("GET" if method == "HEAD" else method)  # a GET route takes HEAD too
        if found is not Match.PARTIAL:
            return None
        methods = {m for m in METHODS if m != "HEAD" and takes(m) is Match.FULL}
        if "GET" in methods:
            methods.add("HEAD")
        return methods or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            methods = self.allowed(scope)
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
