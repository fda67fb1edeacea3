"""GitHub failures mapped to our error tree, at the one boundary that talks to GitHub.

githubkit raises ``RequestFailed`` (an HTTP error status, with ``RateLimitExceeded`` subclasses),
``RequestTimeout`` and ``RequestError`` (connection problems, and anything raised while sending,
such as a key the JWT library cannot use); httpx raises its own errors for the OAuth endpoints;
pydantic raises ``ValidationError`` when GitHub's answer does not have the documented shape.
``map_github_error`` turns each into an ``ScmError`` subclass whose message says what we were
doing and carries GitHub's own ``message`` (and validation ``errors``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pydantic
from githubkit.exception import (
    GitHubException,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)

from openinspect.errors import (
    ScmAuthFailed,
    ScmError,
    ScmNotFound,
    ScmRateLimited,
    ScmUnavailable,
)


def github_message(response: httpx.Response) -> str:
    """GitHub's ``message`` plus any validation ``errors``, or the start of the raw body."""
    try:
        data: Any = json.loads(response.content)
    except ValueError:
        text = response.content[:200].decode("utf-8", "replace").strip()
        return text or response.reason_phrase or f"HTTP {response.status_code}"
    if not isinstance(data, Mapping):
        return str(data)[:200]
    message = str(data.get("message") or data.get("error_description") or data.get("error") or "")
    details = []
    for err in data.get("errors") or []:
        if isinstance(err, Mapping):
            if err.get("message"):
                details.append(str(err["message"]))
            elif err.get("field"):
                details.append(f"{err.get('field')} is {err.get('code', 'invalid')}")
        elif isinstance(err, str):
            details.append(err)
    if details:
        message = f"{message}: {'; '.join(details)}" if message else "; ".join(details)
    return message or f"HTTP {response.status_code}"


def rate_limit_reset(headers: httpx.Headers, now: datetime | None = None) -> str:
    """When a rate limit lifts, in words: ``resets at 12:00:00 UTC (in 42 s)``."""
    now = now or datetime.now(UTC)
    if "retry-after" in headers:
        try:
            return f"retry after {int(headers['retry-after'])} s"
        except ValueError:
            pass
    if "x-ratelimit-reset" in headers:
        try:
            reset = datetime.fromtimestamp(int(headers["x-ratelimit-reset"]), tz=UTC)
        except ValueError:
            return "reset time unknown"
        wait_s = max(0, round((reset - now).total_seconds()))
        return f"resets at {reset:%H:%M:%S} UTC (in {wait_s} s)"
    return "reset time unknown"


def _is_rate_limited(response: httpx.Response) -> bool:
    if response.status_code == 429:
        return True
    if response.status_code != 403:
        return False
    if response.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in response.headers:
        return True
    return "rate limit" in github_message(response).lower()


def map_status(response: httpx.Response, doing: str) -> ScmError:
    """The error for a failed GitHub response; ``doing`` is e.g. ``"getting PR #3 of o/r"``."""
    status = response.status_code
    message = github_message(response)
    text = f"GitHub refused {doing} (HTTP {status}): {message}"
    if _is_rate_limited(response):
        when = rate_limit_reset(response.headers)
        return ScmRateLimited(
            f"GitHub rate limit hit while {doing}: {message}; {when}",
            hint="Wait for the limit to reset; installation tokens have their own, larger limit",
            github_status=status,
        )
    if status == 401:
        return ScmAuthFailed(
            text,
            hint="Check the App id and key, or sign in to GitHub again if it was your token",
            github_status=status,
        )
    if status == 404:
        return ScmNotFound(
            text,
            hint="It does not exist, or this identity cannot see it (is the App installed there?)",
            github_status=status,
        )
    if status >= 500:
        return ScmUnavailable(
            f"GitHub failed while {doing} (HTTP {status}): {message}",
            hint="GitHub is having trouble; try again shortly",
            github_status=status,
        )
    return ScmError(text, github_status=status)


def map_github_error(exc: BaseException, doing: str, api_url: str) -> ScmError:
    """Any exception from githubkit, httpx or response validation, as an ``ScmError``.

    The caller raises the result ``from exc``.
    """
    if isinstance(exc, RateLimitExceeded | RequestFailed):
        return map_status(exc.response.raw_response, doing)
    if isinstance(exc, RequestTimeout):
        return ScmUnavailable(
            f"GitHub at {api_url} did not answer in time while {doing}",
            hint="Check the network, or raise OPENINSPECT_GITHUB__REQUEST_TIMEOUT_S",
        )
    if isinstance(exc, RequestError):
        inner = exc.exc
        if isinstance(inner, httpx.HTTPError):
            return ScmUnavailable(
                f"Cannot reach GitHub at {api_url} while {doing}: "
                f"{str(inner) or type(inner).__name__}",
                hint="Check OPENINSPECT_GITHUB__WEB_URL / API_URL and the network",
            )
        # Raised while preparing the request, e.g. the App key cannot sign a JWT.
        return ScmAuthFailed(
            f"Could not authenticate to GitHub while {doing}: {type(inner).__name__}: {inner}",
            hint="Check OPENINSPECT_GITHUB__APP_PRIVATE_KEY: it must be the App's PEM key",
        )
    if isinstance(exc, httpx.TimeoutException):
        return ScmUnavailable(f"GitHub at {api_url} did not answer in time while {doing}")
    if isinstance(exc, httpx.HTTPStatusError):
        return map_status(exc.response, doing)
    if isinstance(exc, httpx.HTTPError):
        return ScmUnavailable(f"Cannot reach GitHub at {api_url} while {doing}: {exc}")
    if isinstance(exc, pydantic.ValidationError):
        problems = exc.errors()
        where = ".".join(str(p) for p in problems[0]["loc"]) if problems else ""
        what = problems[0]["msg"] if problems else "?"
        return ScmError(
            f"GitHub answered {doing} with an unexpected shape "
            f"({exc.error_count()} problem(s); first at {where or '<root>'}: {what})"
        )
    if isinstance(exc, GitHubException):
        return ScmError(f"GitHub client error while {doing}: {type(exc).__name__}: {exc}")
    return ScmError(f"Unexpected error while {doing}: {type(exc).__name__}: {exc}")
