"""The automations pages: a scheduled automation made in the editor, whose cron field shows the
next five firings in its time zone as you type; run by hand, its run appears in the history
linked to its session, which names the automation; a webhook's secret is shown once."""

from __future__ import annotations

import re
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from openinspect.testing.llm_server import ScriptedLLMServer
from tests.web.conftest import Browsing

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
RUN_TIMEOUT_MS = 90_000
SHOTS = Path("/tmp")


def firings(page: Page) -> list[datetime]:
    items = page.get_by_test_id("schedule-preview").get_by_test_id("schedule-firing")
    expect(items).to_have_count(5)
    return [
        datetime.fromisoformat(str(at))
        for at in items.evaluate_all("l => l.map(e => e.dataset.at)")
    ]


def test_a_scheduled_automation_shows_its_next_firings_and_a_run_started_by_hand(
    browsing: Browsing, llm: ScriptedLLMServer, origin: Path
) -> None:
    llm.reset({"turns": [{"text": "Checked the dependencies: all current."}]})
    page = browsing.page()
    page.get_by_test_id("nav-automations").click()
    page.get_by_test_id("automation-new").click()
    page.wait_for_url(re.compile(r"/automations/new$"))
    page.get_by_test_id("automation-name").fill("Weekday sweep")
    page.get_by_test_id("automation-repo").fill(str(origin))
    page.get_by_test_id("automation-instructions").fill("Check the dependencies.")

    # A preset fires at its time in the chosen zone…
    page.get_by_test_id("automation-tz").fill("America/New_York")
    page.get_by_test_id("automation-preset-weekly").click()
    expect(page.get_by_test_id("automation-cron")).to_have_value("0 0 * * 1")
    expect(page.get_by_test_id("schedule-preview")).to_contain_text("America/New_York")
    weekly = firings(page)
    assert all((f.weekday(), f.hour, f.minute) == (0, 0, 0) for f in weekly), weekly
    assert {f.utcoffset() for f in weekly} <= {datetime.fromisoformat(x).utcoffset()
                                               for x in ("2026-01-01T00:00-05:00",
                                                         "2026-07-01T00:00-04:00")}  # fmt: skip
    assert all((b.date() - a.date()).days == 7 for a, b in pairwise(weekly))  # each Monday

    # …a cron typed by hand is previewed as it is typed, and one too frequent says why.
    cron = page.get_by_test_id("automation-cron")
    cron.fill("*/5 * * * *")
    expect(page.get_by_test_id("automation-preset-weekly")).to_have_attribute(
        "aria-pressed", "false"
    )
    refused = page.get_by_test_id("schedule-preview-error")
    expect(refused).to_contain_text("schedule_invalid")
    expect(refused).to_contain_text("15 minutes")
    cron.fill("30 6 * * 1-5")
    expect(
        page.get_by_test_id("schedule-preview").get_by_test_id("schedule-firing").first
    ).to_have_attribute("data-at", re.compile(r"T06:30:00-0[45]:00$"))
    weekdays = firings(page)
    assert all(f.weekday() < 5 and (f.hour, f.minute) == (6, 30) for f in weekdays), weekdays
    expect(page.get_by_test_id("schedule-firing").first).to_contain_text("06:30 (UTC-0")
    page.screenshot(path=SHOTS / "auto-ui-editor.png", full_page=True)

    page.get_by_test_id("automation-save").click()
    page.wait_for_url(re.compile(r"/automations/aut_[0-9a-f]+$"))
    aid = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_test_id("automation-title")).to_have_text("Weekday sweep")
    expect(page.get_by_test_id("automation-status")).to_have_attribute("data-status", "enabled")
    expect(page.get_by_test_id("automation-secret-once")).to_have_count(0)  # a schedule has none
    expect(
        page.get_by_test_id("automation-next-firings").get_by_test_id("schedule-firing")
    ).to_have_count(5)
    stored = browsing.api("GET", f"/api/automations/{aid}")
    assert stored["trigger"] == {"kind": "schedule", "cron": "30 6 * * 1-5",
                                 "tz": "America/New_York", "preset": None}  # fmt: skip
    expect(page.get_by_test_id("run-list").get_by_test_id("run-row")).to_have_count(0)

    # Run now: the run appears, runs its session with the scripted model, and links to it.
    page.get_by_test_id("automation-run-now").click()
    run = page.get_by_test_id("run-row").first
    expect(run).to_be_visible()
    expect(run).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    expect(run).to_contain_text("by hand")
    session_link = run.get_by_test_id("run-session")
    session_id = session_link.inner_text()
    [listed] = browsing.api("GET", f"/api/automations/{aid}/runs")["runs"]
    assert (listed["id"], listed["session_id"]) == (run.get_attribute("data-run-id"), session_id)
    page.screenshot(path=SHOTS / "auto-ui-automation.png", full_page=True)

    session_link.click()
    page.wait_for_url(re.compile(rf"/sessions/{session_id}$"))
    expect(page.get_by_test_id("session-origin")).to_have_text(re.compile(r"from\s+schedule"))
    expect(page.locator('[data-type="agent-text"]').last).to_contain_text("all current")
    page.get_by_test_id("session-automation").click()
    page.wait_for_url(re.compile(rf"/automations/{aid}$"))

    # The list says how it stands and how its last run went; pause and resume say so too.
    page.get_by_test_id("automation-pause").click()
    expect(page.get_by_test_id("automation-status")).to_have_attribute("data-status", "paused")
    expect(page.get_by_test_id("automation-status")).to_contain_text("paused by Ada Lovelace")
    expect(page.get_by_test_id("automation-next-firings")).to_have_text("none while paused")
    page.get_by_test_id("nav-automations").click()
    row = page.locator(f'[data-testid="automation-row"][data-automation-id="{aid}"]')
    expect(row).to_have_attribute("data-status", "paused")
    expect(row.get_by_test_id("automation-last-run").get_by_test_id("run-status")).to_have_text(
        "succeeded"
    )
    page.screenshot(path=SHOTS / "auto-ui-list.png", full_page=True)
    row.click()
    page.get_by_test_id("automation-resume").click()
    expect(page.get_by_test_id("automation-status")).to_have_attribute("data-status", "enabled")


def test_a_webhook_secret_is_shown_once_and_delete_asks_first(
    browsing: Browsing, origin: Path
) -> None:
    page = browsing.page(path="/automations/new")
    page.get_by_test_id("automation-name").fill("On alert")
    page.get_by_test_id("automation-repo").fill(str(origin))
    page.get_by_test_id("automation-instructions").fill("Triage the alert.")
    page.get_by_test_id("automation-trigger-webhook").click()
    expect(page.get_by_test_id("schedule-preview")).to_have_count(0)
    expect(page.get_by_test_id("automation-concurrency")).to_have_value("queue")
    page.get_by_test_id("automation-conditions").fill("$.level == error")
    page.get_by_test_id("automation-save").click()
    expect(page.get_by_test_id("automation-error")).to_contain_text("PATH:equals:VALUE")
    page.get_by_test_id("automation-conditions").fill("$.level:equals:error\n$.issue.id:exists")
    page.get_by_test_id("automation-save").click()
    page.wait_for_url(re.compile(r"/automations/aut_[0-9a-f]+$"))
    aid = page.url.rsplit("/", 1)[-1]

    once = page.get_by_test_id("automation-secret-once")
    expect(once).to_contain_text("not shown again")
    url = f"{browsing.server.url}/webhooks/automations/{aid}"
    expect(once.get_by_test_id("automation-created-url")).to_have_text(url)
    secret = once.get_by_test_id("automation-created-secret").inner_text()
    assert len(secret) >= 32
    stored = browsing.api("GET", f"/api/automations/{aid}")
    assert secret not in str(stored)
    assert stored["conditions"] == [
        {"path": "$.level", "op": "equals", "value": "error"},
        {"path": "$.issue.id", "op": "exists", "value": None},
    ]
    page.reload()
    expect(page.get_by_test_id("automation-webhook-url")).to_have_text(url)
    expect(page.get_by_test_id("automation-secret-once")).to_have_count(0)
    assert secret not in page.content()

    page.get_by_test_id("automation-delete").click()
    page.get_by_test_id("automation-delete-cancel").click()
    page.get_by_test_id("automation-delete").click()
    page.get_by_test_id("automation-delete-confirm").click()
    page.wait_for_url(re.compile(r"/automations$"))
    expect(page.locator(f'[data-automation-id="{aid}"]')).to_have_count(0)
