"""Which secrets are accepted: names, values and how many.

A name is an environment variable name (``[A-Za-z_][A-Za-z0-9_]*``, at most
:data:`NAME_MAX_CHARS`) that neither openinspect nor the box's own plumbing uses: ``PATH``,
``HOME``, ``OPENINSPECT_*``, ``GIT_*``, ``LD_*``, ``PYTHON*``, the shell's start-up and parsing
variables and the like are refused (:func:`name_problem`), compared without regard to case. They
would change how the box's runtime, its git or its shell behave, and none of them is a secret.

A value is text of at most :data:`VALUE_MAX_BYTES` bytes (UTF-8) without NUL characters (an
environment cannot hold one), with at least :data:`VALUE_MIN_CHARS` characters besides the
whitespace around it: a shorter value cannot be redacted without also hiding ordinary output
(``true``, ``1``, ``dev``), so it is refused rather than stored unredactable. Such settings are
not secrets; they belong in the repo (``.openinspect/setup.sh``).

A scope (global, or one repo) holds at most :data:`MAX_PER_SCOPE` secrets of at most
:data:`SCOPE_MAX_BYTES` together, so a box's environment (global and repo together) stays well
below what the kernel allows a process (``E2BIG``).

Nothing here ever puts a value in a message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

NAME_MAX_CHARS = 128
VALUE_MIN_CHARS = 4
"""Characters a value has at least, not counting the whitespace around it."""
VALUE_MAX_BYTES = 16 * 1024
MAX_PER_SCOPE = 100
SCOPE_MAX_BYTES = 128 * 1024
"""Names and values of one scope together, in bytes."""
IMPORT_MAX_CHARS = 512 * 1024
"""The longest ``.env`` text an import takes."""

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

RESERVED_PREFIXES = (
    "OPENINSPECT_",  # the runtime's own settings, and the bridge token
    "GIT_",  # git in the box pushes through the proxy; these would redirect it
    "LD_",  # the dynamic loader: LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT…
    "PYTHON",  # the runtime is Python: PYTHONPATH, PYTHONHOME, PYTHONSTARTUP…
    "BASH_",  # BASH_ENV runs for every bash -c; BASH_FUNC_* define functions
    "LC_",  # locale
    "GLIBC_",  # GLIBC_TUNABLES
    "MALLOC_",
)
RESERVED_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "PWD",
        "OLDPWD",
        "TERM",
        "LANG",
        "LANGUAGE",
        "TMPDIR",
        "HOSTNAME",
        "ENV",  # sh's start-up file
        "IFS",
        "CDPATH",
        "PS4",
        "SHELLOPTS",
        "BASHOPTS",
        "GLOBIGNORE",
        "PROMPT_COMMAND",
        "_",
    }
)

Scope = Literal["global", "repo"]


@dataclass(frozen=True)
class SecretScope:
    """Where a secret applies: every box (``repo_id`` None) or the boxes of one repo."""

    repo_id: str | None = None

    @property
    def kind(self) -> Scope:
        return "global" if self.repo_id is None else "repo"

    @property
    def key(self) -> str:
        """The scope as stored (``global``, ``repo:<id>``): unique with the name, and part of
        the sealed value's purpose."""
        return "global" if self.repo_id is None else f"repo:{self.repo_id}"


GLOBAL = SecretScope()


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a secret's name, or None. Names the name (never a value)."""
    if not name:
        return "a secret needs a name"
    if len(name) > NAME_MAX_CHARS:
        return f"a name has at most {NAME_MAX_CHARS} characters"
    if _NAME.fullmatch(name) is None:
        return (
            f"{name!r} is not an environment variable name (letters, digits and _, not "
            "starting with a digit)"
        )
    upper = name.upper()
    if upper in RESERVED_NAMES:
        return f"{name} is used by the box itself and cannot be a secret"
    for prefix in RESERVED_PREFIXES:
        if upper.startswith(prefix):
            return f"names starting with {prefix} are used by the box itself"
    return None


def value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a secret's value, or None. Never quotes the value."""
    if "\x00" in value:
        return "a value cannot contain a NUL character"
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > VALUE_MAX_BYTES:
        return f"a value has at most {VALUE_MAX_BYTES:,} bytes (this one has {size:,})"
    if len(value.strip()) < VALUE_MIN_CHARS:
        return (
            f"a value needs at least {VALUE_MIN_CHARS} characters besides the whitespace around "
            "it: a shorter one cannot be kept out of output without hiding ordinary text"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "a value must be valid Unicode text"
    return None


def scope_problem(count: int, size: int) -> str | None:
    """Why a scope that would hold ``count`` secrets of ``size`` bytes (names and values) after
    a change is over its limits, or None."""
    if count > MAX_PER_SCOPE:
        return f"a scope holds at most {MAX_PER_SCOPE} secrets; this change makes {count}"
    if size > SCOPE_MAX_BYTES:
        return (
            f"the secrets of a scope take at most {SCOPE_MAX_BYTES:,} bytes together; this "
            f"change makes {size:,}"
        )
    return None


def secret_bytes(name: str, value: str) -> int:
    """What a secret counts toward its scope's :data:`SCOPE_MAX_BYTES`."""
    return len(name) + len(value.encode("utf-8", "surrogatepass"))


def merged(global_secrets: Mapping[str, str], repo_secrets: Mapping[str, str]) -> dict[str, str]:
    """What a box of a repo gets: the global secrets, then the repo's over them."""
    return {**global_secrets, **repo_secrets}
