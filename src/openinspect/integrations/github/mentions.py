"""Mentions of the bot in GitHub text: ``@<slug>`` or ``@<slug>[bot]``, any case, as a whole
word (``@inspector`` does not mention ``@inspect``; an e-mail address mentions no one). Pure."""

from __future__ import annotations

import re
from functools import lru_cache

FIX_WORD = "fix"


@lru_cache(maxsize=16)
def _pattern(slug: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w@.-])@{re.escape(slug)}(?:\[bot\])?(?![\w-])", re.IGNORECASE)


def mentions(text: str, slug: str) -> bool:
    """Whether ``text`` mentions the bot."""
    return bool(slug) and _pattern(slug).search(text) is not None


def ask_of(text: str, slug: str) -> str:
    """``text`` without its mentions of the bot, stripped (what was asked)."""
    return " ".join(_pattern(slug).sub(" ", text).split(" ")).strip()


def fix_request(text: str, slug: str) -> str | None:
    """The ask when the text after the first mention starts with the word "fix"
    (``@bot fix the failing test`` → ``"fix the failing test"``), else None."""
    if not slug:
        return None
    found = _pattern(slug).search(text)
    if found is None:
        return None
    after = text[found.end() :].lstrip(" \t:,")
    word = re.match(r"[A-Za-z]+", after)
    if word is None or word.group(0).lower() != FIX_WORD:
        return None
    return after.strip()
