"""Which ref updates a session may push: pure policy, no I/O.

Branch names belong to sessions. A session's own branch is ``<branch>`` (``openinspect/<id>``);
the new branches it may create are named ``<branch>-<name>`` (not ``<branch>/<name>``: git cannot
hold both ``a`` and ``a/b``). It may create its branch, and update or force it once it pushed it;
it may create a branch under its name, then update, force or delete it. Everything else is refused
with a reason git shows the agent: tags, refs outside ``refs/heads/``, the base branch (any
update, force or deletion), names owned by another session (the store keeps every session's
claims, also after the branch was deleted on the origin), names it did not create (an existing
branch it never pushed is not taken over), and deletions of anything it did not create.

A session granted an existing branch (``PushPolicy.granted``: a pull request's head, for a fix
asked on that pull request) works on that branch itself: it may only **fast-forward** it, never
create, force or delete it, and it may push no other branch. The wire does not tell a
fast-forward from a force push (both carry an old and a new id), so such an update is allowed
with ``Decision.fast_forward`` set and the proxy checks the ancestry on the pushed objects before
anything reaches the upstream (``scm.fast_forward``).

A push is all-or-nothing: when any command is refused, every command is (the ones that were fine
say so in their reason), so a push never half-lands through the proxy.

Creation is safe to allow without asking the upstream whether the branch exists: a create
command carries the all-zero old id, and the upstream refuses it when the ref already exists.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

NAME_SEPARATOR = "-"
"""Between a session's branch and the name of a branch it creates."""
HEADS = "refs/heads/"
TAGS = "refs/tags/"

TAG_REFUSED = "tag pushes are not allowed from a session"
NOT_FAST_FORWARD = (
    "not a fast-forward, and this branch is only fast-forwarded (no force pushes): "
    "fetch it, rebase your work on it and push again"
)
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

    ``created`` marks a new branch (the session's own, or one under its name), which the session
    owns once the push lands. ``fast_forward`` marks an update allowed only if it is a
    fast-forward (of a granted branch): the proxy checks that before it forwards the push.
    """

    update: RefUpdate
    allowed: bool
    reason: str
    created: bool = False
    fast_forward: bool = False


@dataclass(frozen=True)
class PushPolicy:
    """The branches one session may push to.

    ``session_branch`` is ``openinspect/<id>``; ``base_branch`` the branch the session started
    from; ``created_branches`` the branches this session pushed and owns (the proxy's authority
    keeps that list and adds to it after each landed push); ``foreign_branches`` the names under
    this session's own name that another session owns. With ``granted``, ``session_branch`` is
    an existing branch the session was given (a same-repo pull request's head): fast-forward
    updates of it are the only pushes allowed, and the other fields do not matter.
    """

    session_branch: str
    base_branch: str
    created_branches: frozenset[str] = frozenset()
    foreign_branches: frozenset[str] = frozenset()
    granted: bool = False

    def __post_init__(self) -> None:
        if self.session_branch == self.base_branch:
            raise ValueError(
                f"the session branch and the base branch are both {self.base_branch!r}; "
                "a session must work on its own branch"
            )

    @property
    def namespace(self) -> str:
        """New branches of this session start with this: ``openinspect/<id>-``."""
        return self.session_branch + NAME_SEPARATOR

    @property
    def allowed_summary(self) -> str:
        if self.granted:
            return f"this session may push only fast-forward updates of {self.session_branch}"
        return (
            f"sessions may push only to {self.session_branch} "
            f"or to new branches named {self.namespace}<name>"
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
        if self.granted:
            return self._decide_granted(update, branch)
        if branch in self.foreign_branches:
            return Decision(
                update, False, f"{branch} belongs to another session; {self.allowed_summary}"
            )
        owned = branch in self.created_branches
        if branch == self.session_branch:
            if update.is_delete:
                return Decision(
                    update, False, f"{branch} is this session's branch and cannot be deleted"
                )
            if update.is_create:
                return Decision(update, True, "the session's branch", True)
            if owned:
                return Decision(update, True, "the session's branch")
            return Decision(update, False, _not_taken_over(branch))
        if owned:
            return Decision(update, True, "a branch this session created")
        if update.is_delete:
            return Decision(
                update, False, f"{branch} was not created by this session; deleting it is refused"
            )
        if branch.startswith(self.namespace) and len(branch) > len(self.namespace):
            if update.is_create:
                return Decision(update, True, "a new branch under the session's name", True)
            return Decision(update, False, _not_taken_over(branch))
        return Decision(update, False, self.allowed_summary)

    def _decide_granted(self, update: RefUpdate, branch: str) -> Decision:
        if branch != self.session_branch:
            return Decision(update, False, self.allowed_summary)
        if update.is_delete:
            return Decision(
                update, False, f"{branch} is the branch this session works on; it cannot be deleted"
            )
        if update.is_create:
            return Decision(
                update,
                False,
                f"{branch} is an existing branch this session was given; it is updated, "
                "not created (was it deleted on the origin?)",
            )
        return Decision(
            update, True, "the branch this session was given (fast-forward only)", fast_forward=True
        )

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
        """The branches these (landed) updates created, which the session now owns."""
        return frozenset(
            update.branch
            for update in updates
            if update.branch is not None and self.decide(update).created
        )


def _not_taken_over(branch: str) -> str:
    return (
        f"{branch} already exists on the origin and this session did not create it; "
        "an existing branch is not taken over"
    )


def refuse_rewinds(decisions: Sequence[Decision], rewinds: Collection[str]) -> list[Decision]:
    """``decisions`` once the proxy found the updates of ``rewinds`` (refs) not to be
    fast-forwards: those are refused with :data:`NOT_FAST_FORWARD`, and so (atomically) is
    every other command of the push."""
    if not rewinds:
        return list(decisions)
    return [
        Decision(d.update, False, NOT_FAST_FORWARD)
        if d.update.ref in rewinds
        else d
        if not d.allowed
        else Decision(d.update, False, ATOMIC_REFUSED)
        for d in decisions
    ]


def accepted(decisions: Iterable[Decision]) -> bool:
    """Whether a push may go ahead (every command allowed)."""
    return all(d.allowed for d in decisions)


def refusal_summary(decisions: Sequence[Decision]) -> str:
    """One line per refused ref, for the agent and the push event."""
    lines = [f"{d.update.ref}: {d.reason}" for d in decisions if not d.allowed]
    return "push refused\n" + "\n".join(lines) if lines else "push accepted"
