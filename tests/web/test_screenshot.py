"""The README's screenshot: a real session (text, tool cards, a commit, the Changes panel) at
1280×800, taken from the running app. ``make screenshot`` sets ``OPENINSPECT_SCREENSHOT`` to
``docs/img/session-view.png`` to keep it; otherwise it is written to the test's temporary
directory and only checked."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest
from playwright.sync_api import expect

from openinspect.testing.browser import VIEWPORT
from openinspect.testing.llm_server import ScriptedLLMServer
from tests.web.conftest import Browsing
from tests.web.helpers import rows_of_type, send_prompt

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

FINAL = """Fixed: `add()` subtracted its arguments instead of adding them.

```python
def add(a, b):
    \"\"\"Return the sum of a and b.\"\"\"
    return a + b
```

`test_adds` passes now."""
SCRIPT = {
    "turns": [
        {
            "text": "Let me run the tests first to see what fails.",
            # -B: no cached bytecode, which the same-size edit within the same second would
            # leave looking fresh to the second run.
            "tool_calls": [
                {"name": "bash", "args": {"command": "python3 -B -m unittest -v 2>&1 | tail -n 12"}}
            ],
        },
        {
            "text": "`add` returns `a - b`. Fixing it:",
            "tool_calls": [
                {
                    "name": "edit",
                    "args": {"path": "calc.py", "old": "return a - b", "new": "return a + b"},
                }
            ],
        },
        {"tool_calls": [{"name": "bash", "args": {"command": "python3 -m unittest 2>&1"}}]},
        {"text": FINAL},
    ]
}


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_session_view_screenshot(
    browsing: Browsing, llm: ScriptedLLMServer, origin: Path, tmp_path: Path
) -> None:
    llm.reset(SCRIPT)
    body = {"repo": str(origin), "title": "Fix add() in calc.py"}
    session = browsing.api("POST", "/api/sessions", json=body)["session"]
    path = f"/sessions/{session['id']}"
    browsing.page(browsing.add_user("Grace Hopper"), path=path)  # a second watcher
    page = browsing.page(path=path)
    send_prompt(page, "The add test fails. Find out why, fix it and run the tests again.")

    expect(rows_of_type(page, "prompt-finished")).to_contain_text("Done")
    expect(page.get_by_test_id("agent-text").filter(has_text="passes now")).to_be_visible()
    expect(page.get_by_test_id("git-commit")).to_be_visible()
    expect(page.get_by_test_id("presence-avatar")).to_have_count(2)
    changed = page.locator('[data-testid="diff-file"][data-path="calc.py"]')
    expect(changed).to_contain_text("return a + b")
    last_run = page.locator('[data-testid="tool-card"][data-tool="bash"]').last
    last_run.get_by_test_id("tool-card-toggle").click()
    expect(last_run.get_by_test_id("tool-output")).to_contain_text("OK")
    expect(page.get_by_test_id("tool-card").first).to_be_visible()
    page.mouse.move(0, 0)

    shot = tmp_path / "session-view.png"
    page.screenshot(path=shot, animations="disabled", caret="hide")
    assert png_size(shot) == (VIEWPORT["width"], VIEWPORT["height"])
    keep = os.environ.get("OPENINSPECT_SCREENSHOT")
    if keep:
        Path(keep).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, keep)
