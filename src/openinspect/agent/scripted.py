"""Which files a ``scripted:<name>`` model may replay, and loading them without leaking a byte.

A scripted model reads a JSON file on the server, and the name comes from whoever creates a
session, so the name is a file path chosen by a possibly hostile member. Two kinds of names work:

- ``demo-…``: a script shipped in the package (``openinspect/testing/scripts/demo-….json``),
  always available, so the product can be tried without any model key.
- anything else only when ``models.scripted_dir`` is set: a file name in that directory or a path
  inside it, after resolving symlinks; never ``..``, never a path that resolves outside it.

Every refusal — missing, unreadable, outside the directory, a directory, scripts switched off —
is the same ``UnknownModel`` with the same message, which names neither the path nor its content,
so an answer says nothing about what exists on the server. A file inside the directory that is
not a valid script gets ``invalid script`` and nothing more (a validation message could quote keys
of the file).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from openinspect.errors import UnknownModel

if TYPE_CHECKING:
    from openinspect.testing.llm_server import LLMScript

DEMO_PREFIX = "demo-"
SCRIPT_SUFFIX = ".json"
NAME_MAX_CHARS = 255
SCRIPT_MAX_BYTES = 4 * 1024 * 1024
"""A script is a handful of turns; anything bigger is not one, and is not read into memory."""

UNAVAILABLE_MESSAGE = "No scripted model of that name on this server"
UNAVAILABLE_HINT = (
    "Scripted models are the demo-… scripts shipped with openinspect (see GET /api/models), or "
    "file names in the directory an admin sets with OPENINSPECT_MODELS__SCRIPTED_DIR"
)


def unavailable() -> UnknownModel:
    return UnknownModel(UNAVAILABLE_MESSAGE, hint=UNAVAILABLE_HINT)


def packaged_dir() -> Path:
    """The scripts shipped in the wheel."""
    return Path(str(resources.files("openinspect.testing") / "scripts"))


@functools.cache
def packaged_names() -> tuple[str, ...]:
    """``demo-…`` names of the shipped scripts, sorted (they do not change while we run)."""
    return tuple(
        sorted(
            p.name.removesuffix(SCRIPT_SUFFIX)
            for p in packaged_dir().glob(f"{DEMO_PREFIX}*{SCRIPT_SUFFIX}")
            if p.is_file()
        )
    )


def resolve(name: str, scripted_dir: Path | None) -> Path:
    """The resolved file a scripted model name stands for; ``unavailable()`` otherwise."""
    if not name or len(name) > NAME_MAX_CHARS or "\x00" in name:
        raise unavailable()
    if name.startswith(DEMO_PREFIX) and "/" not in name and name in packaged_names():
        return packaged_dir() / f"{name}{SCRIPT_SUFFIX}"
    if scripted_dir is None or ".." in Path(name).parts:
        raise unavailable()
    try:
        root = scripted_dir.expanduser().resolve(strict=True)
        # An absolute name replaces root in the join; it must still resolve inside it.
        path = (root / name).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, a loop of links, unreadable parents
        raise unavailable() from None
    if not path.is_relative_to(root) or path == root or not path.is_file():
        raise unavailable()
    return path


def load(path: Path) -> LLMScript:
    """Read and validate a resolved script; errors say ``invalid script`` and nothing else."""
    from openinspect.testing.llm_server import ScriptError, load_script

    try:
        with path.open("rb") as f:
            raw = f.read(SCRIPT_MAX_BYTES + 1)
    except OSError:
        raise unavailable() from None
    if len(raw) > SCRIPT_MAX_BYTES:
        raise _invalid()
    try:
        data = json.loads(raw)
        # Only a parsed object: ``load_script`` reads a *string* as a path to open.
        if not isinstance(data, dict):
            raise _invalid()
        return load_script(data)
    except (ValueError, RecursionError, ScriptError):
        raise _invalid() from None


def _invalid() -> UnknownModel:
    return UnknownModel(
        "The scripted model's file is not a valid script",
        hint='A script is JSON: {"turns": [{"text": "…", "tool_calls": […]}]} '
        "(see docs/sessions.md)",
    )
