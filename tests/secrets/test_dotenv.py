"""Pasted ``.env`` text: the forms people write (export, quotes, escapes, comments, blank
lines), and every bad line named by its number, never by its value, with nothing taken."""

from __future__ import annotations

import pytest

from openinspect.errors import SecretInvalid
from openinspect.secrets.dotenv import PROBLEMS_SHOWN, parse_env

GOOD = """\
# deploy keys
export API_TOKEN=tok-0123456789
DB_URL = postgres://app:pw-9876@db/app   # the app's database

SINGLE='literal $HOME \\n # not a comment'
DOUBLE="line one\\nline \\"two\\"\\tend"
export MULTI="-----BEGIN KEY-----
abcdefgh12345678
-----END KEY-----"
HASHED=abc#def
EMPTYISH=    spaced-value-1
"""


def test_the_forms_people_write_are_read() -> None:
    parsed = parse_env(GOOD)
    assert parsed.values == {
        "API_TOKEN": "tok-0123456789",
        "DB_URL": "postgres://app:pw-9876@db/app",
        "SINGLE": "literal $HOME \\n # not a comment",
        "DOUBLE": 'line one\nline "two"\tend',
        "MULTI": "-----BEGIN KEY-----\nabcdefgh12345678\n-----END KEY-----",
        "HASHED": "abc#def",
        "EMPTYISH": "spaced-value-1",
    }
    assert parsed.lines == {
        "API_TOKEN": 2,
        "DB_URL": 3,
        "SINGLE": 5,
        "DOUBLE": 6,
        "MULTI": 7,
        "HASHED": 10,
        "EMPTYISH": 11,
    }
    assert "tok-0123456789" not in repr(parsed)


def test_nothing_is_expanded() -> None:
    assert parse_env("A=${HOME}/x-1\nB=$A-yyyy").values == {"A": "${HOME}/x-1", "B": "$A-yyyy"}


def test_windows_line_ends_and_a_byte_order_mark() -> None:
    assert parse_env("\ufeffA=abcd-1\r\nB='efgh-2'\r\n").values == {"A": "abcd-1", "B": "efgh-2"}


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("GOOD=abcdefgh\nnot a binding here\n", 2, "not KEY=value"),
        ("A=abcdefgh\n\n\nB='never closed\nC=xyzw1234\n", 4, "not KEY=value"),
        ("PATH=/usr/local/evil-bin\n", 1, "used by the box itself"),
        ("# c\nOPENINSPECT_SANDBOX_TOKEN=forged-token\n", 2, "OPENINSPECT_"),
        ("export LD_PRELOAD=/tmp/evil.so\n", 1, "LD_"),
        ("1ABC=leading-digit\n", 1, "not an environment variable name"),
        ("NOVALUE\n", 1, "no '='"),
        ("A=abcdefgh\nA=ijklmnop\n", 2, "also set on line 1"),
        ("SHORT=abc\n", 1, "at least 4 characters"),
        ("BLANK=\n", 1, "at least 4 characters"),
        ("BIG=" + "x" * 20_000 + "\n", 1, "at most 16,384 bytes"),
    ],
)
def test_a_bad_line_refuses_the_text_naming_the_line_not_the_value(
    text: str, line: int, why: str
) -> None:
    with pytest.raises(SecretInvalid) as refused:
        parse_env(text)
    message = refused.value.message
    assert f"line {line}:" in message and why in message, message
    assert message.startswith("Nothing was imported")
    assert line in refused.value.details["lines"]
    for value in ("abcdefgh", "ijklmnop", "/usr/local/evil-bin", "forged-token", "leading-digit"):
        assert value not in message


def test_every_bad_line_is_named_up_to_a_limit() -> None:
    text = "".join(f"bad line {n}\n" for n in range(PROBLEMS_SHOWN + 5))
    with pytest.raises(SecretInvalid) as refused:
        parse_env(text)
    assert f"line {PROBLEMS_SHOWN}:" in refused.value.message
    assert f"line {PROBLEMS_SHOWN + 1}:" not in refused.value.message
    assert refused.value.message.endswith("and 5 more")


def test_text_that_sets_nothing_is_refused() -> None:
    with pytest.raises(SecretInvalid, match="sets no secret"):
        parse_env("# only a comment\n\n")
