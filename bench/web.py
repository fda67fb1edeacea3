"""Opening a long session in the web app: ``web_open_5000_events_ms``.

A session whose log holds 5,000 durable events (``session-created`` and 4,999 seeded ones: finished
prompts with text, tool calls and results, see ``openinspect.testing.seed``) is opened in headless
Chromium by navigating to ``/sessions/{id}``, each sample in a fresh browser profile (empty cache,
a new sign-in). Times are measured in the page, per animation frame, from the start of that
navigation (``performance.now()``):

- ``first_paint``: to the first frame with a timeline row (``timeline-item``) in the document;
- ``interactive``: to the first frame in which the prompt box is enabled and the row of the
  newest event (the last ``prompt-finished``) is in the document;
- ``older_page``: from scrolling the timeline to the top to the first frame with a row older than
  any shown before (a page of history fetched over the WebSocket and rendered).

The baseline is the same page opening a session of one seeded prompt (15 events) in the same run;
ratios are of the p50s. One untimed opening of each session comes first (server and browser warm
up).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.common import BenchEnv, bench_env, progress, ratio, summarize_ms
from openinspect.testing.browser import (
    browser_missing,
    launch_chromium,
    load_older,
    new_context,
    open_marks,
    sign_in,
    watch_session_open,
    web_missing,
)
from openinspect.testing.seed import seed_history
from openinspect.testing.server import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

LONG_EVENTS = 5000
SHORT_EVENTS = 15
OPEN_TIMEOUT_MS = 60_000


@dataclass
class WebSamples:
    """Durations in seconds, per measure."""

    long: dict[str, list[float]] = field(default_factory=dict)
    short: dict[str, list[float]] = field(default_factory=dict)

    def add(self, which: dict[str, list[float]], name: str, value_ms: float) -> None:
        which.setdefault(name, []).append(value_ms / 1000)


@dataclass(frozen=True)
class _Target:
    session_id: str
    newest_seq: int


def _open(
    browser: Browser, server: ServerProcess, target: _Target
) -> tuple[dict[str, float], BrowserContext, Page]:
    """Sign in in a fresh profile, then open the session; returns the page's marks."""
    context = new_context(browser, server.url)
    watch_session_open(context, target.newest_seq)
    page = context.new_page()
    sign_in(page, server.token)
    page.goto(f"/sessions/{target.session_id}")
    return open_marks(page, OPEN_TIMEOUT_MS), context, page


def _measure(server: ServerProcess, long: _Target, short: _Target, n: int) -> WebSamples:
    """Sync (Playwright): run in a worker thread."""
    samples = WebSamples()
    with launch_chromium() as browser:
        for i in range(n + 1):
            marks, context, _ = _open(browser, server, short)
            context.close()
            if i > 0:
                for name, value in marks.items():
                    samples.add(samples.short, name, value)
            marks, context, page = _open(browser, server, long)
            older_ms, _ = load_older(page)
            context.close()
            if older_ms is None:
                raise RuntimeError("scrolling to the top loaded no older events")
            if i == 0:
                continue
            for name, value in marks.items():
                samples.add(samples.long, name, value)
            samples.add(samples.long, "older_page", older_ms)
            progress(
                f"web {i}/{n}: first paint {marks['first_paint']:.0f} ms, interactive "
                f"{marks['interactive']:.0f} ms, older page {older_ms:.0f} ms"
            )
    return samples


async def _sessions(env: BenchEnv) -> tuple[_Target, _Target]:
    """The long and the short session, seeded while the server is stopped."""
    async with env.client() as client:
        long = (await client.create_session(repo=str(env.origin), title="5,000 events"))["session"]
        short = (await client.create_session(repo=str(env.origin), title="one prompt"))["session"]
    url = f"sqlite+aiosqlite:///{env.server.home / 'openinspect.db'}"
    await asyncio.to_thread(env.server.stop)
    newest_long = await seed_history(url, long["id"], LONG_EVENTS - 1)
    newest_short = await seed_history(url, short["id"], SHORT_EVENTS - 1)
    await asyncio.to_thread(env.server.start)
    return _Target(long["id"], newest_long), _Target(short["id"], newest_short)


def report(samples: WebSamples) -> dict[str, Any]:
    long = {name: summarize_ms(values) for name, values in samples.long.items()}
    short = {name: summarize_ms(values) for name, values in samples.short.items()}
    return {
        "events": LONG_EVENTS,
        **long,
        f"baseline_{SHORT_EVENTS}_events": short,
        "ratio_first_paint_to_baseline": ratio(
            float(long["first_paint"]["p50"]), float(short["first_paint"]["p50"])
        ),
        "ratio_interactive_to_baseline": ratio(
            float(long["interactive"]["p50"]), float(short["interactive"]["p50"])
        ),
    }


async def run(n: int) -> dict[str, Any]:
    """``n`` samples of opening the long and the short session, on a server of its own (the
    seeding restarts it)."""
    reason = browser_missing() or web_missing()
    if reason is not None:
        raise RuntimeError(f"cannot measure the web app: {reason}")
    async with bench_env("web") as env:
        long, short = await _sessions(env)
        progress(f"web: opening a {LONG_EVENTS}-event session x{n}")
        samples = await asyncio.to_thread(_measure, env.server, long, short, n)
    return report(samples)
