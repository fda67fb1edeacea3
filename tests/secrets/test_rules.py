"""Which names and values a secret may have: environment variable names the box does not use
itself, values long enough to redact and small enough for an environment."""

from __future__ import annotations

import pytest

from openinspect.secrets.rules import (
    MAX_PER_SCOPE,
    SCOPE_MAX_BYTES,
    VALUE_MAX_BYTES,
    name_problem,
    scope_problem,
    value_problem,
)


@pytest.mark.parametrize(
    "name", ["API_TOKEN", "_private", "npm_token", "A1", "X" * 128, "PATHS", "HOMEBREW_TOKEN"]
)
def test_ordinary_names_are_taken(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1ABC",
        "WITH-DASH",
        "WITH SPACE",
        "ÜMLAUT",
        "X" * 129,
        "PATH",
        "path",
        "HOME",
        "SHELL",
        "IFS",
        "ENV",
        "BASH_ENV",
        "BASH_FUNC_ls%%",
        "TMPDIR",
        "LANG",
        "LC_ALL",
        "TERM",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "LD_PRELOAD",
        "ld_library_path",
        "GIT_SSH_COMMAND",
        "GIT_CONFIG_GLOBAL",
        "OPENINSPECT_SANDBOX_TOKEN",
        "openinspect_bridge_url",
        "GLIBC_TUNABLES",
        "_",
    ],
)
def test_names_the_box_uses_or_that_are_no_names_are_refused(name: str) -> None:
    assert name_problem(name) is not None


def test_values_long_enough_to_redact_and_small_enough_for_an_environment() -> None:
    assert value_problem("abcd") is None
    assert value_problem("  abcd  ") is None
    assert value_problem("é" * (VALUE_MAX_BYTES // 2)) is None
    for short in ("", "abc", "  ab  ", "\n\n\n\n\n"):
        assert "at least 4" in (value_problem(short) or "")
    assert "NUL" in (value_problem("abcd\x00efgh") or "")
    assert "16,384 bytes" in (value_problem("é" * (VALUE_MAX_BYTES // 2 + 1)) or "")
    assert "Unicode" in (value_problem("abcd\udc80") or "")


def test_a_scope_is_bounded_in_count_and_size() -> None:
    assert scope_problem(MAX_PER_SCOPE, SCOPE_MAX_BYTES) is None
    assert "at most 100 secrets" in (scope_problem(MAX_PER_SCOPE + 1, 10) or "")
    assert "131,072 bytes" in (scope_problem(3, SCOPE_MAX_BYTES + 1) or "")
