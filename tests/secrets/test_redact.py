"""Redaction: every form a value is printed in becomes ``[secret:NAME]``, in text, in nested
data, in events (which stay valid), in a stream cut anywhere, in raw bytes and in the log."""

from __future__ import annotations

import json
import logging
import random

import pytest

from openinspect.domain.events import (
    SandboxLog,
    ToolCall,
    ToolOutputDelta,
    ToolResult,
    event_adapter,
)
from openinspect.secrets.redact import (
    EMPTY,
    LABEL,
    Redactor,
    SecretRedaction,
    redactor_of,
    variants,
)

TOKEN = "sk-live-0123456789abcdef"
PEM = (
    "-----BEGIN TEST KEY-----\nMIIEowIBAAKCAQEAx7abc\nq2Ws9dZXkqLmnopQRST\n-----END TEST KEY-----\n"
)
SECRETS = {"API_TOKEN": TOKEN, "DEPLOY_KEY": PEM, "DB_PASSWORD": 'pa"ss\\word'}


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(SECRETS.items())


def shown(name: str) -> str:
    return LABEL.format(name=name)


def test_a_value_anywhere_in_text_is_replaced_by_its_name(redactor: Redactor) -> None:
    text = f"API_TOKEN={TOKEN}\nurl=https://x:{TOKEN}@host/{TOKEN}{TOKEN}\n"
    assert redactor.redact(text) == (
        f"API_TOKEN={shown('API_TOKEN')}\nurl=https://x:{shown('API_TOKEN')}@host/"
        f"{shown('API_TOKEN')}{shown('API_TOKEN')}\n"
    )
    untouched = "nothing secret here"
    assert redactor.redact(untouched) is untouched


def test_the_forms_a_shell_or_a_program_prints_a_value_in(redactor: Redactor) -> None:
    echoed = " ".join(PEM.split())  # echo $DEPLOY_KEY, unquoted
    assert redactor.redact(f"[{echoed}]") == f"[{shown('DEPLOY_KEY')}]"
    crlf = PEM.replace("\n", "\r\n")
    assert TOKEN not in redactor.redact(crlf) and "MIIEowIBAAKCAQEAx7abc" not in redactor.redact(
        crlf
    )
    for line in PEM.splitlines()[1:3]:  # printed one line at a time
        assert redactor.redact(f"> {line}") == f"> {shown('DEPLOY_KEY')}"
    dumped = json.dumps({"DB_PASSWORD": SECRETS["DB_PASSWORD"], "DEPLOY_KEY": PEM})
    assert redactor.redact(dumped) == json.dumps(
        {"DB_PASSWORD": shown("DB_PASSWORD"), "DEPLOY_KEY": shown("DEPLOY_KEY")}
    )


def test_forms_are_never_shorter_than_a_value_may_be() -> None:
    assert all(len(f.strip()) >= 4 for f in variants("ab cd ef gh\nij kl"))
    assert variants("abcd") == ["abcd"]


def test_the_longest_value_wins_where_values_overlap() -> None:
    r = Redactor([("SHORT", "abcdef12"), ("LONG", "abcdef12345678")])
    assert r.redact("abcdef12345678 abcdef12") == f"{shown('LONG')} {shown('SHORT')}"


def test_nested_data_is_redacted_and_left_alone_where_clean(redactor: Redactor) -> None:
    data = {"matches": [f"a.py:1:{TOKEN}", "b.py:2:ok"], "n": 3, "nested": ({"k": TOKEN},)}
    out = redactor.redact_tree(data)
    assert out == {
        "matches": [f"a.py:1:{shown('API_TOKEN')}", "b.py:2:ok"],
        "n": 3,
        "nested": ({"k": shown("API_TOKEN")},),
    }
    clean = {"a": ["b", 1]}
    assert redactor.redact_tree(clean) is clean


def test_an_event_is_redacted_in_its_text_never_in_its_ids(redactor: Redactor) -> None:
    result = ToolResult(session_id="ses_1", call_id=TOKEN, tool="bash", output=f"x {TOKEN}")
    out = redactor.redact_event(result)
    assert isinstance(out, ToolResult)
    assert (out.output, out.call_id) == (f"x {shown('API_TOKEN')}", TOKEN)
    call = ToolCall(session_id="ses_1", call_id="c", tool="bash", args={"command": f"echo {TOKEN}"})
    assert redactor.redact_event(call).args == {"command": f"echo {shown('API_TOKEN')}"}  # type: ignore[union-attr]
    log = SandboxLog(session_id="ses_1", source="setup", line="nothing")
    assert redactor.redact_event(log) is log


def test_an_event_with_a_size_limit_stays_valid() -> None:
    r = Redactor([("A_VERY_LONG_SECRET_NAME_INDEED", "abcd")])
    delta = ToolOutputDelta(session_id="s", call_id="c", index=0, data="abcd" * 4096)
    out = r.redact_event(delta)
    assert isinstance(out, ToolOutputDelta)
    assert "abcd" not in out.data and len(out.data) <= len(delta.data)
    event_adapter.validate_python(out.model_dump())


@pytest.mark.parametrize("seed", range(20))
def test_a_stream_cut_anywhere_is_redacted_as_if_whole(redactor: Redactor, seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(
        rng.choice(["plain output ", TOKEN, PEM, "sk-live-0123", "\n", SECRETS["DB_PASSWORD"]])
        for _ in range(40)
    )
    stream = redactor.stream()
    out, at = [], 0
    while at < len(text):
        size = rng.randint(1, 30)
        out.append(stream.feed(text[at : at + size]))
        at += size
    out.append(stream.flush() or "")
    assert "".join(out) == redactor.redact(text)
    assert TOKEN not in "".join(out)


def test_a_stream_holds_back_only_what_may_begin_a_value(redactor: Redactor) -> None:
    stream = redactor.stream()
    assert stream.feed("hello sk-li") == "hello "
    assert stream.feed("fe\n") == "sk-life\n"
    assert stream.feed("sk-live-0123456789") == ""
    assert stream.feed("abcdef and more") == f"{shown('API_TOKEN')} and more"
    assert stream.flush() is None


def test_raw_bytes_are_redacted_as_a_stream(redactor: Redactor) -> None:
    stream = redactor.byte_stream()
    data = f"log: {TOKEN} é\n".encode()
    out = b"".join(stream.feed(data[i : i + 3]) for i in range(0, len(data), 3))
    out += stream.flush() or b""
    assert out == f"log: {shown('API_TOKEN')} é\n".encode()


def test_no_secrets_no_work() -> None:
    assert EMPTY.empty and redactor_of([]) is EMPTY
    assert EMPTY.redact("x") == "x"
    assert redactor_of([("A", "abcdefgh")]) is redactor_of([("A", "abcdefgh")])
    assert repr(Redactor([("A", "abcdefgh")])).count("abcdefgh") == 0


async def test_a_sessions_values_stay_until_it_leaves_and_reach_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redaction = SecretRedaction()
    try:
        first = redaction.track("ses_1", {"API_TOKEN": TOKEN})
        assert first.redact(TOKEN) == shown("API_TOKEN")
        # A changed value: the next box gets the new one, and the old one stays redacted.
        both = redaction.track("ses_1", {"API_TOKEN": "sk-live-ROTATED-999"})
        rotated = both.redact(f"{TOKEN} sk-live-ROTATED-999")
        assert rotated == f"{shown('API_TOKEN')} {shown('API_TOKEN')}"
        assert (await redaction.of_session("ses_2")).empty
        with caplog.at_level(logging.INFO):
            logging.getLogger("openinspect.test").info("the box said %s (%d)", TOKEN, 7)
            logging.getLogger("openinspect.test").info("failed: %s", RuntimeError(TOKEN))
            try:
                raise RuntimeError(f"failed with {TOKEN}")
            except RuntimeError:
                logging.getLogger("openinspect.test").exception("oops")
        assert TOKEN not in caplog.text
        assert f"the box said {shown('API_TOKEN')} (7)" in caplog.text
        assert f"failed: {shown('API_TOKEN')}" in caplog.text
        assert caplog.records[0].args == (shown("API_TOKEN"), 7)  # its shape kept
        redaction.forget("ses_1")
        assert redaction.get("ses_1") is None
        logging.getLogger("openinspect.test").warning("after %s", TOKEN)
        assert f"after {TOKEN}" in caplog.text  # no session here knows it any more
    finally:
        redaction.close()
