"""Headless Chromium for the browser tests, the screenshot and the benchmark.

Playwright (a development dependency, imported lazily) drives Debian's Chromium at
``/usr/bin/chromium``; Playwright's own browser downloads are never used (``playwright install``
is not needed and not run). The helpers use the Playwright sync API: call them from plain
functions or a worker thread, never from inside a running asyncio loop.

The web app's elements are found by ``data-testid`` (the list is in ``web/TESTIDS.md``).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = (
    "--no-sandbox",  # the tests may run as root, where Chromium's own sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
PHONE_VIEWPORT: ViewportSize = {"width": 390, "height": 844}
"""A phone (an iPhone 12–15's CSS pixels), emulated with touch and a mobile viewport."""
WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (uv sync installs the dev group)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian package chromium; scripts/bootstrap.sh installs it)"
    return None


def web_missing() -> str | None:
    """Why the web app cannot be served (it is not built), or None."""
    if (WEB_DIST / "index.html").exists():
        return None
    hint = "run `make web`" if shutil.which("npm") else "install Node.js and run `make web`"
    return f"the web app is not built in {WEB_DIST}: {hint}"


@contextlib.contextmanager
def launch_chromium() -> Iterator[Browser]:
    """A headless Chromium, closed (with Playwright's driver) on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(LAUNCH_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def new_context(
    browser: Browser,
    base_url: str,
    *,
    color_scheme: Literal["light", "dark"] = "dark",
    phone: bool = False,
) -> BrowserContext:
    """A fresh browser profile (its own storage) at the desktop size of the screenshots, or
    with ``phone`` a touch phone at 390×844 (no hover, coarse pointer, mobile viewport)."""
    if phone:
        return browser.new_context(
            base_url=base_url,
            viewport=PHONE_VIEWPORT,
            device_scale_factor=3,
            is_mobile=True,
            has_touch=True,
            color_scheme=color_scheme,
            reduced_motion="reduce",
        )
    return browser.new_context(
        base_url=base_url,
        viewport=VIEWPORT,
        color_scheme=color_scheme,
        reduced_motion="reduce",
    )


def sign_in(page: Page, token: str, path: str = "/") -> None:
    """Open ``path`` and sign in with ``token`` through the sign-in form; returns when the app
    shows its navigation."""
    page.goto(path)
    page.get_by_test_id("signin-token").fill(token)
    page.get_by_test_id("signin-submit").click()
    page.get_by_test_id("nav-sessions").wait_for()


# Recorded in the page itself, per animation frame, against ``performance.now()`` (0 = the start
# of the navigation), so Playwright's own round trips do not count. The session socket is watched
# for the oldest event the page has received (a virtualised timeline shows only some of them).
_OPEN_MARKS_JS = """
(() => {
  const wantSeq = %d;
  const marks = {};
  const loaded = { oldest: Infinity };
  Object.defineProperty(window, '__oiOpenMarks', { value: marks });
  Object.defineProperty(window, '__oiLoaded', { value: loaded });
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        if (typeof e.data !== 'string') return;
        const head = e.data.slice(0, 40);
        if (!head.includes('"subscribed"') && !head.includes('"history-page"')) return;
        for (const event of JSON.parse(e.data).events || []) {
          loaded.oldest = Math.min(loaded.oldest, event.seq);
        }
      });
    }
  };
  const has = (selector) => document.querySelector(selector) !== null;
  const tick = () => {
    const now = performance.now();
    if (marks.first_paint === undefined && has('[data-testid="timeline-item"]')) {
      marks.first_paint = now;
    }
    const input = document.querySelector('[data-testid="prompt-input"]');
    if (
      marks.interactive === undefined && input !== null && !input.disabled &&
      has(`[data-testid="timeline-item"][data-seq="${wantSeq}"]`)
    ) {
      marks.interactive = now;
    }
    if (marks.first_paint === undefined || marks.interactive === undefined) {
      requestAnimationFrame(tick);
    }
  };
  requestAnimationFrame(tick);
})();
"""

_LOAD_OLDER_JS = """
async (timeoutMs) => {
  const loaded = window.__oiLoaded;
  const before = loaded.oldest;
  const older = () => [...document.querySelectorAll('[data-testid="timeline-item"]')]
    .some((row) => Number(row.dataset.seq) < before);
  const timeline = document.querySelector('[data-testid="timeline"]');
  const started = performance.now();
  timeline.scrollTop = 0;
  return await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      if (older()) resolve({ ms: now - started, oldest: loaded.oldest });
      else if (now - started > timeoutMs) resolve({ ms: null, oldest: loaded.oldest });
      else {
        // Stay at the top, as a person holding the scrollbar would: a first paint that is
        // still settling may scroll the view back to the newest row once.
        if (timeline.scrollTop !== 0) timeline.scrollTop = 0;
        requestAnimationFrame(tick);
      }
    };
    requestAnimationFrame(tick);
  });
}
"""


def watch_session_open(context: BrowserContext, newest_seq: int) -> None:
    """Record, in every page of ``context`` from its next navigation on, when the session view
    first paints and when it becomes interactive (see ``open_marks``), and the oldest event the
    page received (see ``load_older``)."""
    context.add_init_script(script=_OPEN_MARKS_JS % newest_seq)


def open_marks(page: Page, timeout_ms: float = 60_000) -> dict[str, float]:
    """Milliseconds from the start of the page's navigation to

    - ``first_paint``: the first animation frame with a ``timeline-item`` in the document;
    - ``interactive``: the first frame in which the prompt box is enabled and the newest event's
      row (``data-seq`` = the seq given to ``watch_session_open``) is in the document.

    Waits until both happened."""
    page.wait_for_function(
        "() => window.__oiOpenMarks && window.__oiOpenMarks.interactive !== undefined"
        " && window.__oiOpenMarks.first_paint !== undefined",
        timeout=timeout_ms,
    )
    marks: dict[str, float] = page.evaluate("() => ({ ...window.__oiOpenMarks })")
    return marks


def load_older(page: Page, timeout_ms: float = 30_000) -> tuple[float | None, int]:
    """Scroll the timeline to the top and wait for a row older than every event the page had
    received (so from a page of history loaded now). Returns the milliseconds from the scroll to
    the first frame showing such a row (None if none came within ``timeout_ms``), and the oldest
    seq the page has received by then. Needs ``watch_session_open`` before the page opened."""
    result = page.evaluate(_LOAD_OLDER_JS, timeout_ms)
    return result["ms"], int(result["oldest"])
