"""What the repo and the team tell the agent beyond the prompt: the repo's ``AGENTS.md`` (or
``CLAUDE.md``) and the managed skills.

- **Root instructions**: ``AGENTS.md`` and ``CLAUDE.md`` at the repo root are read from the box
  (the bridge's file read, at most ``agent.instructions_chars`` each, cut with a note) and added
  to the instructions of every model request from then on. They are read when the prompt
  starts if the box is ready (or taken from the end of the last prompt on the same box: the
  session actor keeps them), else by the first tool call that waits for it: the first model
  request never waits for a booting box.
- **Nested instructions**: when a tool reads, writes or edits a file under a directory (below
  the root) that has its own ``AGENTS.md``/``CLAUDE.md``, the file is appended to that tool's
  result, once per directory and prompt run.
- **Skills**: each skill's name and description is listed in the instructions; ``load_skill``
  returns a body (at most ``agent.skill_chars``).

Everything read here comes from the repo or from admins: it is the agent's guidance, never
trusted by the control plane.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from openinspect.errors import OpenInspectError, SandboxError
from openinspect.sandboxes.bridge import SandboxConnection

INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md")
NESTED_DIRS_MAX = 64
"""Directories checked for nested instructions per prompt run (each check is a file read)."""


@dataclass(frozen=True)
class SkillEntry:
    name: str
    description: str


SkillLoader = Callable[[str], Awaitable[str | None]]


def cut(text: str, limit: int, what: str) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[… {what} cut: {len(text) - limit:,} more characters not shown …]"


@dataclass
class Guidance:
    """One prompt run's instructions from the repo and the team (see the module docstring)."""

    repo_dir: str = "/workspace/repo"
    limit_chars: int = 32 * 1024
    skills: Sequence[SkillEntry] = ()
    loader: SkillLoader | None = None
    skill_chars: int = 32 * 1024
    root: str | None = None
    """The root instructions as read (None until the box was asked)."""
    _checked: set[str] = field(default_factory=set)

    def instructions(self) -> str:
        """The part of the instructions this adds (empty when there is nothing)."""
        parts: list[str] = []
        if self.root:
            parts.append(
                "The repository's own instructions for agents follow; follow them unless the "
                f"user says otherwise.\n\n{self.root}"
            )
        if self.skills:
            listed = "\n".join(f"- {s.name}: {s.description}" for s in self.skills)
            parts.append(
                "Skills your team keeps (load one with the load_skill tool when its "
                f"description fits the task):\n{listed}"
            )
        return "\n\n".join(parts)

    async def read_root(self, box: SandboxConnection) -> None:
        """Read the root instruction files from ``box``, once; a missing one is skipped."""
        if self.root is not None:
            return
        self._checked.add(".")
        self.root = await self._read_dir(box, ".")

    async def _read_dir(self, box: SandboxConnection, rel_dir: str) -> str:
        names = [name if rel_dir == "." else f"{rel_dir}/{name}" for name in INSTRUCTION_FILES]
        # Both at once: at a prompt's start this is on the way to its first model request.
        read = await asyncio.gather(*(self._read_one(box, rel) for rel in names))
        return "\n\n".join(text for text in read if text)

    async def _read_one(self, box: SandboxConnection, rel: str) -> str:
        try:
            # Relative: the box resolves it against its checkout, wherever that is.
            result = await box.read_file(rel, max_chars=self.limit_chars)
        except (SandboxError, OpenInspectError):
            return ""  # not there (or not a file): nothing to say
        content = result["content"]
        if not content.strip():
            return ""
        if result["truncated"]:
            content += f"\n[… {rel} cut at {self.limit_chars:,} characters …]"
        return f"<{rel}>\n{content.rstrip()}\n</{rel}>"

    async def nested_note(self, box: SandboxConnection, path: str) -> str:
        """The instructions of the directories from the root down to ``path``'s that were not
        given yet, as a note for the tool's result ('' when none)."""
        rel = self._relative(path)
        if rel is None:
            return ""
        notes: list[str] = []
        parts = rel.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            rel_dir = "/".join(parts[:depth])
            if rel_dir in self._checked or len(self._checked) >= NESTED_DIRS_MAX:
                continue
            self._checked.add(rel_dir)
            text = await self._read_dir(box, rel_dir)
            if text:
                notes.append(text)
        if not notes:
            return ""
        joined = cut("\n\n".join(notes), self.limit_chars, "directory instructions")
        return f"[Instructions for this directory, from the repository:]\n{joined}"

    def _relative(self, path: str) -> str | None:
        """``path`` relative to the repo, normalised; None when outside it (or not known to be
        inside: an absolute path elsewhere than ``repo_dir``)."""
        full = posixpath.normpath(posixpath.join(self.repo_dir, path))
        root = posixpath.normpath(self.repo_dir)
        if full == root or not full.startswith(root + "/"):
            return None
        return full[len(root) + 1 :]

    async def load_skill(self, name: str) -> str:
        """A skill's body for the model, or a result saying which skills there are."""
        body = None
        if self.loader is not None and any(s.name == name for s in self.skills):
            body = await self.loader(name)
        if body is None:
            names = ", ".join(s.name for s in self.skills) or "none"
            return f"error [skill_not_found]: no skill named {name[:64]!r}; available: {names}"
        return cut(body, self.skill_chars, f"skill {name}")
