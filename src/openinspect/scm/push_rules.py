"""Which ref updates a session may push: pure policy, no I/O.

A session may push to its own branch (``openinspect/<id>``: create, update, force) and may create
new branches under the prefix (``openinspect/…``); a branch it created it may then update, force
or delete. Everything else is refused with a reason git shows the agent: tags, refs outside
``refs/heads/``, the base branch (any update, force or deletion), branches the session did not
create, and deletions of anything it did not create.

A push is all-or-nothing: when any command is refused, every command is (the ones that were fine
say so in their reason), so a push never half-lands through the proxy.

Creation is safe to allow without asking the upstream whether the branch exists: a create
command carries the all-zero old id, and the upstream refuses it when the ref already exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DEFAULT_BRANCH_PREFIX = "openinspect/"
HEADS = "refs/heads/"
TAGS = "refs/tags/"

TAG_REFUSED = "tag pushes are not allowed from a session"
ATOMIC_REFUSED = "not pushed: another ref in this push was refused, and a push lands whole or not"
_BAD_REF_PARTS = ("..", "//", "@{", "\\", " ", "~", "^", ":", "?", "*", "[")


def _valid_branch_name(branch: str) -> bool:
    """A cautious subset of ``git check-ref-format`` (the upstream checks again)."""
    if not branch or branch.endswith(("/", ".", ".lock")) or branch.startswith("-"):
        return False
    if any(part in branch for part in _BAD_REF_PARTS):
        return False
    if any(ord(c) < 32 or ord(c) == 127 for c in branch):
        return False
    return not any(part.startswith(".") for part in branch.split("/"))


def _is_zero(sha: str) -> bool:
    return set(sha) == {"0"}


@dataclass(frozen=True)
class RefUpdate:
    """One command of a push: move ``ref`` from ``old`` to ``new`` (hex object ids).

    An all-zero ``old`` creates the ref, an all-zero ``new`` deletes it.
    """

    old: str
    new: str
    ref: str

    @property
    def is_create(self) -> bool:
        return _is_zero(self.old) and not _is_zero(self.new)

    @property
    def is_delete(self) -> bool:
        return _is_zero(self.new)

    @property
    def branch(self) -> str | None:
        """The branch name for ``refs/heads/<name>``, else None."""
        return self.ref[len(HEADS) :] if self.ref.startswith(HEADS) else None


@dataclass(frozen=True)
class Decision:
    """The verdict on one :class:`RefUpdate`: ``reason`` is shown to the agent when refused.

    ``created`` marks a new branch under the prefix, which the session owns once the push lands.
    """

    update: RefUpdate
    allowed: bool
    reason: str
    created: bool = False


@dataclass(frozen=True)
class PushPolicy:
    """The branches one session may push to.

    ``session_branch`` is ``openinspect/<id>``; ``base_branch`` the branch the session started
    from; ``created_branches`` the branches under ``prefix`` that earlier pushes of this session
    created (the proxy's authority keeps that list and adds to it after each landed push).
    """

    session_branch: str
    base_branch: str
    prefix: str = DEFAULT_BRANCH_PREFIX
    created_branches: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.prefix.endswith("/"):
            raise ValueError(f"the branch prefix must end with '/', got {self.prefix!r}")
        if self.session_branch == self.base_branch:
            raise ValueError(
                f"the session branch and the base branch are both {self.base_branch!r}; "
                "a session must work on its own branch"
            )

    @property
    def allowed_summary(self) -> str:
        return (
            f"sessions may push only to {self.session_branch} "
            f"or to new branches under {self.prefix}"
        )

    def decide(self, update: RefUpdate) -> Decision:
        """The verdict on one command, judged alone (see :meth:`check` for a whole push)."""
        ref = update.ref
        if ref.startswith(TAGS):
            return Decision(update, False, TAG_REFUSED)
        branch = update.branch
        if branch is None:
            return Decision(update, False, f"{ref} is not a branch; {self.allowed_summary}")
        if not _valid_branch_name(branch):
            return Decision(update, False, f"{ref} is not a valid branch name")
        if branch == self.base_branch:
            return Decision(
                update,
                False,
                f"{branch} is the base branch; push to {self.session_branch} instead",
            )
        if branch == self.session_branch:
            if update.is_delete:
                return Decision(
                    update, False, f"{branch} is this session's branch and cannot be deleted"
                )
            return Decision(update, True, "the session's branch")
        owned = branch in self.created_branches
        if update.is_delete:
            if owned:
                return Decision(update, True, "a branch this session created")
            return Decision(
                update, False, f"{branch} was not created by this session; deleting it is refused"
            )
        if branch.startswith(self.prefix) and len(branch) > len(self.prefix):
            if update.is_create:
                return Decision(update, True, "a new branch under the session prefix", True)
            if owned:
                return Decision(update, True, "a branch this session created")
            return Decision(
                update, False, f"{branch} was not created by this session; {self.allowed_summary}"
            )
        return Decision(update, False, self.allowed_summary)

    def check(self, updates: Sequence[RefUpdate]) -> list[Decision]:
        """The verdicts on a whole push, in order. Atomic: if any command is refused, every
        allowed one is refused too (with :data:`ATOMIC_REFUSED` as its reason)."""
        decisions = [self.decide(update) for update in updates]
        if all(d.allowed for d in decisions):
            return decisions
        return [
            d if not d.allowed else Decision(d.update, False, ATOMIC_REFUSED) for d in decisions
        ]

    def new_branches(self, updates: Iterable[RefUpdate]) -> frozenset[str]:
        """The branches these (landed) updates created that the session now owns."""
        return frozenset(
            update.branch
            for update in updates
            if update.branch is not None and self.decide(update).created
        )


def accepted(decisions: Iterable[Decision]) -> bool:
    """Whether a push may go ahead (every command allowed)."""
    return all(d.allowed for d in decisions)


def refusal_summary(decisions: Sequence[Decision]) -> str:
    """One line per refused ref, for the agent and the push event."""
    lines = [f"{d.update.ref}: {d.reason}" for d in decisions if not d.allowed]
    return "push refused\n" + "\n".join(lines) if lines else "push accepted"
