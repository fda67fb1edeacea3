"""Helpers for the browser tests: read and drive the session view like a person would."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect


def timeline_rows(page: Page) -> list[tuple[int, str]]:
    """The timeline rows in the document (the virtual list renders those near the viewport), as
    ``(data-seq, data-type)``, in document order."""
    items = page.get_by_test_id("timeline-item")
    found = items.evaluate_all("rows => rows.map(r => [Number(r.dataset.seq), r.dataset.type])")
    return [(int(seq), str(kind)) for seq, kind in found]


def send_prompt(page: Page, text: str) -> None:
    """Type a prompt in the session view and press Enter; returns once the box emptied (sent)."""
    box = page.get_by_test_id("prompt-input")
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value("")


def rows_of_type(page: Page, kind: str) -> Locator:
    return page.locator(f'[data-testid="timeline-item"][data-type="{kind}"]')
