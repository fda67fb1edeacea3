"""The web app: the SPA built from ``web/`` into the package's ``web/dist``, served at ``/``.

Mounted last, so every API route wins. For a request that reaches it:

- a path under an API prefix (``/api``, ``/healthz``, ``/sandbox``, ``/git``, ``/webhooks``,
  ``/auth``, ``/slack``) gets the JSON 404 envelope: an unknown API call is an error, never a page;
- ``/assets/*`` are Vite's content-hashed files: cached for a year (``immutable``); a missing one
  is a 404 (answering a stale script URL with HTML would only fail later, less clearly);
- any other existing file of the build (``favicon.svg``…) is served with ``no-cache``;
- any other GET is the history-API fallback: ``index.html`` (``no-cache``), so ``/sessions/…``
  can be reloaded or shared;
- other methods are 405.

Without a build (a source checkout before ``make run``) every page is a 503 ``web_not_built``:
an HTML page for a browser, the JSON envelope otherwise. The build is looked up per request, so
a server that is already running picks up ``npm run build`` output at once.

HTML responses carry a Content-Security-Policy that allows only this origin (the WebSocket
included: CSP3 ``'self'`` covers ``ws:``/``wss:`` to the same host) plus the hashes of the inline
scripts of ``index.html`` (the theme is applied before first paint), and forbid framing.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketClose

from openinspect.api.errors import envelope
from openinspect.errors import NotFoundError

DIST_DIR = Path(__file__).resolve().parent.parent / "web" / "dist"
"""Where ``npm run build`` (``make run``) writes the app; shipped in the wheel."""
API_PREFIXES = ("/api", "/healthz", "/sandbox", "/git", "/webhooks", "/auth", "/slack")
APP_PAGES_UNDER_API_PREFIXES = ("/auth/complete", "/auth/link", "/slack/link")
"""Pages of the app that live under a server prefix (sign-in ends at ``/auth/complete``; a
sign-in link opens ``/auth/link``; the Slack app's link button ``/slack/link``)."""
ASSETS_PREFIX = "/assets/"
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
PAGE_CACHE_CONTROL = "no-cache"
WEB_NOT_BUILT = "web_not_built"
_INLINE_SCRIPT = re.compile(
    r"<script\b(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL
)
_NOT_BUILT_MESSAGE = "The web app is not built"
_NOT_BUILT_HINT = (
    "Run `make run` (it builds the front end), or `cd web && npm ci && npm run build`; "
    "the API under /api works without it"
)


def content_security_policy(index_html: str) -> str:
    """The CSP of the app's pages: this origin only, plus the hashes of the page's inline
    scripts. Styles may be inline: tool output's 256- and true-colour ANSI escapes become
    ``style`` attributes (inline CSS runs no script). Images may come from any https origin:
    people's avatars are served by the identity provider's CDN."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in _INLINE_SCRIPT.findall(index_html)
    )
    script_src = f"'self' {hashes}".strip()
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src {script_src}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: https:",  # avatars come from the identity provider's CDN
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def security_headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


@dataclass(frozen=True)
class _Index:
    mtime_ns: int
    body: bytes
    headers: dict[str, str]


class WebApp:
    """The ASGI app behind the mount at ``/``. It raises ``HTTPException``/``OpenInspectError``
    so that the API's handlers render them in the one error envelope."""

    def __init__(self, dist_dir: Path) -> None:
        self.dist_dir = dist_dir
        self._files = StaticFiles(directory=dist_dir, check_dir=False)
        self._index: _Index | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await WebSocketClose()(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path not in APP_PAGES_UNDER_API_PREFIXES and any(
            path == p or path.startswith(p + "/") for p in API_PREFIXES
        ):
            raise NotFoundError(
                f"No route {method} {path}", hint="See /api/openapi.json for the API's routes"
            )
        if method not in ("GET", "HEAD"):
            raise HTTPException(405, f"{method} is not allowed here", {"Allow": "GET, HEAD"})
        index = self._load_index()
        if index is None:
            response = _not_built(Headers(scope=scope))
        elif path in ("/", "/index.html"):
            response = _page(index, method)
        else:
            try:
                response = await self._files.get_response(path.lstrip("/"), scope)
            except HTTPException as exc:
                if exc.status_code != 404:
                    raise
                if path.startswith(ASSETS_PREFIX):
                    raise NotFoundError(
                        f"No such asset: {path}", hint="Reload the page to get the current build"
                    ) from exc
                response = _page(index, method)  # a route of the app: history-API fallback
            else:
                immutable = path.startswith(ASSETS_PREFIX)
                response.headers["Cache-Control"] = (
                    ASSET_CACHE_CONTROL if immutable else PAGE_CACHE_CONTROL
                )
                response.headers["X-Content-Type-Options"] = "nosniff"
        await response(scope, receive, send)

    def _load_index(self) -> _Index | None:
        """``index.html`` and its headers, re-read when the build changes."""
        try:
            mtime_ns = (self.dist_dir / "index.html").stat().st_mtime_ns
        except OSError:
            return None
        if self._index is None or self._index.mtime_ns != mtime_ns:
            body = (self.dist_dir / "index.html").read_bytes()
            headers = security_headers(content_security_policy(body.decode(errors="replace")))
            headers["Cache-Control"] = PAGE_CACHE_CONTROL
            self._index = _Index(mtime_ns, body, headers)
        return self._index


def _page(index: _Index, method: str) -> Response:
    response = Response(
        b"" if method == "HEAD" else index.body,
        media_type="text/html; charset=utf-8",
        headers=index.headers,
    )
    response.headers["Content-Length"] = str(len(index.body))
    return response


def _not_built(headers: Headers) -> Response:
    extra = {"Cache-Control": "no-store", "Retry-After": "30"}
    if "text/html" in headers.get("accept", ""):
        page = (
            "<!doctype html><html lang=en><meta charset=utf-8><title>openinspect</title>"
            "<body style='font:16px system-ui;margin:3rem;max-width:40rem'>"
            f"<h1>{html.escape(_NOT_BUILT_MESSAGE)}</h1><p>{html.escape(_NOT_BUILT_HINT)}</p>"
            f"<p><code>{WEB_NOT_BUILT}</code></p></body></html>"
        )
        csp = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
        return HTMLResponse(page, status_code=503, headers=extra | security_headers(csp))
    return JSONResponse(
        envelope(WEB_NOT_BUILT, _NOT_BUILT_MESSAGE, _NOT_BUILT_HINT), status_code=503, headers=extra
    )


def mount_web(app: Starlette, dist_dir: Path | None = None) -> None:
    """Serve the web app at ``/``; call after every other route is added."""
    app.mount("/", WebApp(dist_dir or DIST_DIR), name="web")
