"""A 5,000-event session opens with its newest events and pages older history in as the timeline
is scrolled to the top, without gaps or duplicates. Prints how long that took; asserts nothing
about time (``make bench`` reports the same measures against a baseline)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from openinspect.testing.browser import load_older, open_marks, watch_session_open
from openinspect.testing.llm_server import ScriptedLLMServer
from openinspect.testing.seed import seed_history
from openinspect.testing.server import ServerProcess
from tests.web.conftest import Browsing, failed, run_async, web_server_env
from tests.web.helpers import timeline_rows

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

EVENTS = 5000


@dataclass
class LongSession:
    browsing: Browsing
    session_id: str
    newest_seq: int


@pytest.fixture
def long_session(
    request: pytest.FixtureRequest,
    chromium: Browser,
    llm: ScriptedLLMServer,
    origin: Path,
    tmp_path: Path,
) -> Iterator[LongSession]:
    """A server of its own (seeding needs it stopped) with one session of ``EVENTS`` events."""
    with ServerProcess(tmp_path / "home", env=web_server_env(llm, tmp_path)) as server:
        created = httpx.post(
            f"{server.url}/api/sessions",
            json={"repo": str(origin), "title": "A long session"},
            headers={"Authorization": f"Bearer {server.token}"},
            timeout=30,
        )
        session_id = created.json()["session"]["id"]
        server.stop()
        url = f"sqlite+aiosqlite:///{server.home / 'openinspect.db'}"
        newest = run_async(seed_history(url, session_id, EVENTS - 1))
        server.start()
        browsing = Browsing(chromium, server)
        yield LongSession(browsing, session_id, newest)
        browsing.close(failed(request), tmp_path)


@pytest.mark.timeout(300)  # two server starts and 5,000 seeded events before the page opens
def test_a_5000_event_session_opens_and_pages_in_its_history(long_session: LongSession) -> None:
    assert long_session.newest_seq == EVENTS
    browsing = long_session.browsing
    page = browsing.page()
    watch_session_open(page.context, long_session.newest_seq)
    page.goto(f"/sessions/{long_session.session_id}")
    marks = open_marks(page)

    # The newest events are shown first; older ones are there to be loaded.
    first = timeline_rows(page)
    assert first[-1] == (EVENTS, "prompt-finished")
    assert [seq for seq, _ in first] == sorted({seq for seq, _ in first})
    expect(page.get_by_test_id("load-older")).to_be_attached()

    older_ms: list[float] = []
    oldest = page.evaluate("window.__oiLoaded.oldest")
    assert 1 < oldest <= first[0][0]
    while oldest > 1:
        took_ms, now_oldest = load_older(page)
        assert took_ms is not None, f"nothing older than seq {oldest} came"
        assert now_oldest < oldest
        older_ms.append(took_ms)
        oldest = now_oldest
        shown = [seq for seq, _ in timeline_rows(page)]
        assert shown == sorted(set(shown)), "rows out of order or repeated"
    expect(page.get_by_test_id("load-older")).to_have_count(0)
    timeline = page.get_by_test_id("timeline")
    timeline.evaluate("el => { el.scrollTop = 0; }")
    expect(timeline).to_contain_text("Beginning of the session")
    expect(page.locator('[data-testid="timeline-item"][data-seq="1"]')).to_have_attribute(
        "data-type", "session-created"
    )
    assert timeline_rows(page)[0] == (1, "session-created")

    print(
        f"\n{EVENTS}-event session: first paint {marks['first_paint']:.0f} ms, "
        f"interactive {marks['interactive']:.0f} ms; {len(older_ms)} older pages, "
        f"median {statistics.median(older_ms):.0f} ms, max {max(older_ms):.0f} ms"
    )
