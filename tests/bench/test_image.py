"""``repo_image_cold_start_ms`` on its own, on a smaller generated repo: sessions started from
the repo's image (checked to be at the commit pushed after the build) against ``git clone
--local`` of the same repo and a fresh-clone session, in the same run; the ratio is of the
p50s."""

from __future__ import annotations

import pytest

from bench import image
from openinspect.sandboxes.bwrap import probe_bwrap
from tests.conftest import skip_or_fail

pytestmark = [pytest.mark.e2e, pytest.mark.bwrap]


@pytest.mark.timeout(400)
async def test_repo_image_cold_start_reports_image_starts_against_a_local_clone() -> None:
    if (why := probe_bwrap()) is not None:
        skip_or_fail(f"bubblewrap cannot create namespaces here: {why}")
    result = await image.run(1, files=500)
    cold = result["repo_image_cold_start_ms"]
    clone = result["git_clone_local_ms"]
    assert cold["n"] == clone["n"] == 1
    assert result["image_box_ready_ms"]["n"] == result["fresh_clone_first_tool_result_ms"]["n"] == 1
    for summary in (cold, clone, result["image_box_ready_ms"]):
        assert summary["p50"] > 0
    # The box is ready before its first tool result.
    assert result["image_box_ready_ms"]["p50"] < cold["p50"]
    assert result["ratio_to_clone"] == round(cold["p50"] / clone["p50"], 2)
    assert result["files"] == 505 and result["image_bytes"] > 0
