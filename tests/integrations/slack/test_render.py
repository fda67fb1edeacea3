"""The Block Kit the app posts: what a status and a final message show, and that nothing the
agent writes can ping a channel, mention someone or forge a link in them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from openinspect.domain.events import (
    AgentText,
    ErrorInfo,
    GitPush,
    PromptFinished,
    PromptQueued,
    PromptStarted,
    PrOpened,
    SandboxStatusChanged,
    ToolCall,
    ToolResult,
    Usage,
)
from openinspect.domain.models import Author
from openinspect.integrations.slack import render
from openinspect.integrations.slack.state import ThreadState, apply, repo_label
from openinspect.settings import ServerSettings, Settings

SID = "ses_1"
T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SETTINGS = Settings(server=ServerSettings(public_url="https://oi.example"))
ALICE = Author(id="usr_a", name="Alice", email="a@example.com")


def ev(cls: type, **fields: object) -> object:
    return cls(session_id=SID, prompt_id=fields.pop("prompt_id", "p1"), **fields)


def folded(*events: object) -> ThreadState:
    state = ThreadState(repo="acme/widgets", branch="openinspect/abc")
    for event in events:
        apply(state, event)  # type: ignore[arg-type]
    return state


def texts(message: render.Message) -> str:
    """Every string a message shows (its fallback and all its blocks)."""
    return json.dumps(message, ensure_ascii=False)


def buttons(message: render.Message) -> dict[str, dict[str, object]]:
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    return {e["action_id"]: e for e in actions["elements"]}


def test_the_status_follows_the_prompt_step_by_step() -> None:
    state = folded(ev(PromptStarted, model="m", effort=None, ts=T0))
    assert (state.status, state.step) == ("running", "Starting the sandbox")
    apply(state, ev(SandboxStatusChanged, status="ready"))
    assert state.step == "Thinking"
    apply(state, ev(ToolCall, call_id="c1", tool="bash", args={"command": "pytest -q\ntests"}))
    assert (state.step, state.detail, state.tool) == ("Running `bash`", "pytest -q tests", "bash")
    apply(state, ev(ToolResult, call_id="c1", tool="bash", output="ok"))
    assert (state.step, state.tool) == ("Thinking", None)
    apply(state, ev(ToolCall, call_id="c2", tool="write", args={"path": "a.py", "content": ""}))
    assert (state.step, state.detail) == ("Writing", "a.py")
    apply(
        state,
        ev(Usage, model="m", input_tokens=1, output_tokens=1, cost_usd=0.04, total_cost_usd=0.5),
    )
    message = render.status_message(
        state, settings=SETTINGS, session_id=SID, now=T0 + timedelta(seconds=72)
    )
    shown = texts(message)
    assert "Writing: `a.py`" in shown and "*acme/widgets*" in shown
    assert "⏱ 1m 12s · $0.04" in shown
    assert buttons(message)["openinspect_stop"]["value"] == SID
    assert buttons(message)["openinspect_open"]["url"] == f"https://oi.example/sessions/{SID}"
    assert message["text"]  # the plain fallback

    apply(state, ev(PromptFinished, status="success", ts=T0 + timedelta(seconds=90)))
    done = render.status_message(
        state, settings=SETTINGS, session_id=SID, now=T0 + timedelta(hours=1)
    )
    assert "✅ *Done*" in texts(done) and "⏱ 1m 30s" in texts(done)
    assert "openinspect_stop" not in buttons(done)  # only while running


def test_the_final_message_has_the_result_branch_pr_cost_and_buttons() -> None:
    state = folded(
        ev(PromptStarted, model="m", effort=None, ts=T0),
        ev(AgentText, part_id="a", text="Looking."),
        ev(AgentText, part_id="b", text="Fixed the *widget* bug."),
        ev(GitPush, sha="f" * 40, branch="openinspect/abc", remote="origin"),
        ev(Usage, model="m", input_tokens=1, output_tokens=1, cost_usd=0.25),
        ev(PromptFinished, status="success"),
    )
    final = render.final_message(state, settings=SETTINGS, session_id=SID)
    shown = texts(final)
    assert "Fixed the *widget* bug." in shown and "Looking." not in shown
    assert "`openinspect/abc`" in shown and "$0.25" in shown
    assert set(buttons(final)) == {"openinspect_open", "openinspect_create_pr"}  # pushed, no PR
    apply(state, ev(PrOpened, url="https://github.com/acme/widgets/pull/12", number=12))
    final = render.final_message(state, settings=SETTINGS, session_id=SID)
    assert "<https://github.com/acme/widgets/pull/12|#12>" in texts(final)
    assert set(buttons(final)) == {"openinspect_open"}


def test_a_failed_prompt_says_why() -> None:
    state = folded(
        ev(PromptStarted, model="m", effort=None),
        ev(
            PromptFinished,
            status="error",
            error=ErrorInfo(code="x", message="The model <b>hung</b>"),
        ),
    )
    final = render.final_message(state, settings=SETTINGS, session_id=SID)
    assert "❌ *Failed: The model &lt;b&gt;hung&lt;/b&gt;*" in texts(final)


INJECTION = (
    "<!channel> <!here> <@U0ADMIN> <!subteam^S1> read <https://evil.example|the docs> & "
    "<mailto:x@evil.example|HR>"
)


def test_agent_text_cannot_ping_mention_or_forge_links() -> None:
    state = folded(
        ev(PromptStarted, model="m", effort=None),
        ev(ToolCall, call_id="c", tool="bash", args={"command": "echo '<!channel>' `x`"}),
        ev(AgentText, part_id="a", text=INJECTION),
        ev(PromptFinished, status="success"),
    )
    for message in (
        render.final_message(state, settings=SETTINGS, session_id=SID),
        render.status_message(state, settings=SETTINGS, session_id=SID, now=T0),
        render.notify_message(INJECTION, settings=SETTINGS, session_id=SID, title="<!channel>"),
    ):
        shown = texts(message)
        for forged in ("<!", "<@", "<https://evil", "<mailto", "|the docs>"):
            assert forged not in shown, (forged, shown)
        assert "&lt;!channel&gt;" in shown or "Done" in shown


def test_long_text_is_cut_within_slack_limits_without_half_an_entity() -> None:
    state = folded(
        ev(PromptStarted, model="m", effort=None),
        ev(AgentText, part_id="a", text="&" * 10_000),
        ev(PromptFinished, status="success"),
    )
    final = render.final_message(state, settings=SETTINGS, session_id=SID)
    section = final["blocks"][0]["text"]["text"]
    assert len(section) <= render.SECTION_MAX_CHARS and section.endswith("&amp;…")
    assert len(final["blocks"]) <= 50 and len(final["text"]) <= render.FALLBACK_MAX_CHARS
    assert render.escape_cut("a<b", 3) == "a…"


def test_a_prompt_queued_behind_the_running_one_is_remembered_until_it_starts() -> None:
    author = {"author": ALICE, "content": "x", "model": "m", "effort": None, "position": 1}
    state = folded(
        ev(PromptQueued, prompt_id="p1", **author),
        ev(PromptStarted, prompt_id="p1", model="m", effort=None),
        ev(PromptQueued, prompt_id="p2", **author),
    )
    assert state.queued == ["p2"] and state.status == "running"
    apply(state, ev(PromptFinished, prompt_id="p1", status="success"))
    assert state.queued == ["p2"]
    apply(state, ev(PromptStarted, prompt_id="p2", model="m", effort=None))
    assert state.queued == [] and state.prompt_id == "p2"


def test_repo_labels() -> None:
    assert repo_label("https://github.com/acme/widgets.git") == "acme/widgets"
    assert repo_label("/srv/repos/calc") == "calc"
