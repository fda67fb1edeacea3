""" "Fork from here" on a timeline row: it makes a new session at that event and opens it, and the
fork's header links back to where it came from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from openinspect.testing.llm_server import ScriptedLLMServer
from tests.web.conftest import Browsing
from tests.web.helpers import rows_of_type, send_prompt

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_fork_from_a_finished_prompt_opens_the_fork(
    browsing: Browsing, llm: ScriptedLLMServer, origin: Path
) -> None:
    source = browsing.api("POST", "/api/sessions", json={"repo": str(origin)})["session"]
    page = browsing.page(path=f"/sessions/{source['id']}")
    done = rows_of_type(page, "prompt-finished")
    llm.reset({"turns": [{"text": "All done."}]})
    send_prompt(page, "say something")
    expect(done).to_have_count(1)
    seq = int(done.first.get_attribute("data-seq") or "0")
    assert seq > 0

    done.first.hover()
    fork_button = done.first.get_by_test_id("fork-here")
    expect(fork_button).to_be_visible()
    fork_button.click()
    expect(page).not_to_have_url(re.compile(rf"/sessions/{source['id']}$"))
    expect(page).to_have_url(re.compile(r"/sessions/ses_[0-9a-f]+$"))
    fork_id = page.url.rsplit("/", 1)[1]
    assert fork_id != source["id"]
    forked = browsing.api("GET", f"/api/sessions/{fork_id}")["session"]
    assert (forked["forked_from_id"], forked["forked_from_seq"]) == (source["id"], seq)
    header = page.get_by_test_id("session-forked-from")
    expect(header).to_contain_text(source["id"])
    expect(header).to_contain_text(f"at event {seq}")
    expect(page.get_by_test_id("forked-from-event")).to_contain_text(f"at event {seq}")
    # Rows with no point to fork at (the session's start, the sandbox line) have no button.
    expect(page.get_by_test_id("fork-here")).to_have_count(0)
