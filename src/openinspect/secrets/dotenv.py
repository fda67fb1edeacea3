"""Secrets from pasted ``.env`` text, read by python-dotenv's parser (``dotenv.parser``).

What it takes, one binding per line:

- ``KEY=value`` and ``export KEY=value``; whitespace around ``=`` is allowed;
- ``# comments`` and blank lines, which are skipped;
- an unquoted value ends at the line's end, less a `` # comment`` after whitespace
  (``KEY=a#b`` keeps ``a#b``) and the whitespace around it;
- ``'single quotes'`` keep their text as it is (only ``\\'`` and ``\\\\`` are escapes);
- ``"double quotes"`` take ``\\n``, ``\\t``, ``\\"``, ``\\\\`` and the other C escapes, and may
  span lines.

Nothing is expanded: ``${OTHER}`` stays as it is written. Each binding's name and value are then
checked by :mod:`.rules`. A line that is not a binding, a name set twice, or a name or value the
rules refuse makes the whole text refused (:class:`~openinspect.errors.SecretInvalid`), with every
problem named by its line number and, where there is one, the name, never a value.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from dotenv.parser import Binding, parse_stream

from openinspect.errors import SecretInvalid
from openinspect.secrets.rules import IMPORT_MAX_CHARS, name_problem, value_problem

PROBLEMS_SHOWN = 20
"""Problems one refusal lists at most (then how many more there are)."""
_LEADING_NEWLINES = re.compile(r"\r\n|\n|\r")


@dataclass(frozen=True)
class Parsed:
    """The bindings of a text, in its order, and the line each was on."""

    values: dict[str, str]
    lines: dict[str, int]

    def __repr__(self) -> str:  # values must not reach a log through a repr
        return f"Parsed(names={list(self.values)!r})"


def _line_of(binding: Binding) -> int:
    """The line the binding's own text starts on (dotenv counts from the blank lines before)."""
    text = binding.original.string
    lead = text[: len(text) - len(text.lstrip())]
    return binding.original.line + len(_LEADING_NEWLINES.findall(lead))


def parse_env(text: str) -> Parsed:
    """The secrets ``text`` sets. Raises ``SecretInvalid`` naming each bad line."""
    if len(text) > IMPORT_MAX_CHARS:
        raise SecretInvalid(
            f"The text has {len(text):,} characters; an import takes at most {IMPORT_MAX_CHARS:,}",
            hint="Import it in parts",
        )
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    problems: list[str] = []
    for binding in parse_stream(io.StringIO(text)):
        line = _line_of(binding)
        if binding.error:
            problems.append(f"line {line}: not KEY=value (an unclosed quote?)")
            continue
        name, value = binding.key, binding.value
        if name is None:  # a comment or blank lines
            continue
        why = name_problem(name)
        if why is not None:
            problems.append(f"line {line}: {why}")
            continue
        if value is None:
            problems.append(f"line {line}: {name} has no '=' and no value")
            continue
        if name in values:
            problems.append(f"line {line}: {name} is also set on line {lines[name]}")
            continue
        why = value_problem(value)
        if why is not None:
            problems.append(f"line {line}: {name}: {why}")
            continue
        values[name], lines[name] = value, line
    if problems:
        shown = "; ".join(problems[:PROBLEMS_SHOWN])
        more = len(problems) - PROBLEMS_SHOWN
        raise SecretInvalid(
            f"Nothing was imported: {shown}" + (f"; and {more} more" if more > 0 else ""),
            hint="Fix those lines and import the text again",
            lines=sorted({int(p.split(":", 1)[0].removeprefix("line ")) for p in problems}),
        )
    if not values:
        raise SecretInvalid("The text sets no secret", hint="Paste lines of the form KEY=value")
    return Parsed(values, lines)
