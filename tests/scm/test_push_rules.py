"""The push policy: every rule, each kind of command, and atomic refusal."""

from __future__ import annotations

import pytest

from openinspect.scm.push_rules import (
    ATOMIC_REFUSED,
    NOT_FAST_FORWARD,
    TAG_REFUSED,
    Decision,
    PushPolicy,
    RefUpdate,
    accepted,
    refusal_summary,
    refuse_rewinds,
)

ZERO = "0" * 40
A = "a" * 40
B = "b" * 40
ZERO256 = "0" * 64
C256 = "c" * 64
ALLOWED_ONLY = (
    "sessions may push only to openinspect/s1 or to new branches named openinspect/s1-<name>"
)
TAKEN = (
    "already exists on the origin and this session did not create it; "
    "an existing branch is not taken over"
)
FOREIGN = f"belongs to another session; {ALLOWED_ONLY}"

POLICY = PushPolicy(
    session_branch="openinspect/s1",
    base_branch="main",
    created_branches=frozenset({"openinspect/s1", "openinspect/s1-mine", "openinspect/legacy"}),
    foreign_branches=frozenset({"openinspect/s1-squatted"}),
)
# A session that has not pushed its branch yet.
FRESH = PushPolicy(session_branch="openinspect/s1", base_branch="main")


def create(ref: str) -> RefUpdate:
    return RefUpdate(ZERO, A, ref)


def update(ref: str) -> RefUpdate:  # a fast-forward and a force push look the same on the wire
    return RefUpdate(A, B, ref)


def delete(ref: str) -> RefUpdate:
    return RefUpdate(A, ZERO, ref)


@pytest.mark.parametrize(
    ("command", "allowed", "reason", "created"),
    [
        # the session branch: create, update, force; never delete
        (create("refs/heads/openinspect/s1"), True, "the session's branch", True),
        (update("refs/heads/openinspect/s1"), True, "the session's branch", False),
        (
            delete("refs/heads/openinspect/s1"),
            False,
            "openinspect/s1 is this session's branch and cannot be deleted",
            False,
        ),
        # the base branch: nothing at all
        (
            update("refs/heads/main"),
            False,
            "main is the base branch; push to openinspect/s1 instead",
            False,
        ),
        (
            create("refs/heads/main"),
            False,
            "main is the base branch; push to openinspect/s1 instead",
            False,
        ),
        (
            delete("refs/heads/main"),
            False,
            "main is the base branch; push to openinspect/s1 instead",
            False,
        ),
        # new branches under the session's own name are created and owned
        (
            create("refs/heads/openinspect/s1-other"),
            True,
            "a new branch under the session's name",
            True,
        ),
        (
            create("refs/heads/openinspect/s1-a/b"),
            True,
            "a new branch under the session's name",
            True,
        ),
        # branches the session created: update, force, delete (also ones from before the
        # naming rule, which the store says it owns)
        (update("refs/heads/openinspect/s1-mine"), True, "a branch this session created", False),
        (delete("refs/heads/openinspect/s1-mine"), True, "a branch this session created", False),
        (update("refs/heads/openinspect/legacy"), True, "a branch this session created", False),
        # a name under its own that exists on the origin but that it did not create
        (update("refs/heads/openinspect/s1-human"), False, f"openinspect/s1-human {TAKEN}", False),
        (
            delete("refs/heads/openinspect/s1-human"),
            False,
            "openinspect/s1-human was not created by this session; deleting it is refused",
            False,
        ),
        # a name under its own that another session claimed: not even a create
        (
            create("refs/heads/openinspect/s1-squatted"),
            False,
            f"openinspect/s1-squatted {FOREIGN}",
            False,
        ),
        (
            update("refs/heads/openinspect/s1-squatted"),
            False,
            f"openinspect/s1-squatted {FOREIGN}",
            False,
        ),
        # other sessions' names, whether or not they exist on the origin
        (create("refs/heads/openinspect/s2"), False, ALLOWED_ONLY, False),
        (create("refs/heads/openinspect/s2-x"), False, ALLOWED_ONLY, False),
        (create("refs/heads/openinspect/s1/x"), False, ALLOWED_ONLY, False),
        (create("refs/heads/openinspect/s10"), False, ALLOWED_ONLY, False),
        (create("refs/heads/openinspect/other"), False, ALLOWED_ONLY, False),
        (update("refs/heads/openinspect/existing"), False, ALLOWED_ONLY, False),
        (
            delete("refs/heads/openinspect/existing"),
            False,
            "openinspect/existing was not created by this session; deleting it is refused",
            False,
        ),
        # every other branch
        (create("refs/heads/feature"), False, ALLOWED_ONLY, False),
        (update("refs/heads/feature"), False, ALLOWED_ONLY, False),
        (
            delete("refs/heads/feature"),
            False,
            "feature was not created by this session; deleting it is refused",
            False,
        ),
        (create("refs/heads/openinspect"), False, ALLOWED_ONLY, False),
        (create("refs/heads/openinspect/s1-"), False, ALLOWED_ONLY, False),
        # tags, whatever the operation
        (create("refs/tags/v2"), False, TAG_REFUSED, False),
        (update("refs/tags/v1"), False, TAG_REFUSED, False),
        (delete("refs/tags/v1"), False, TAG_REFUSED, False),
        # refs outside refs/heads
        (
            create("refs/notes/commits"),
            False,
            f"refs/notes/commits is not a branch; {ALLOWED_ONLY}",
            False,
        ),
        (
            create("refs/pull/1/head"),
            False,
            f"refs/pull/1/head is not a branch; {ALLOWED_ONLY}",
            False,
        ),
        (create("HEAD"), False, f"HEAD is not a branch; {ALLOWED_ONLY}", False),
        (
            create("refs/heads-not/x"),
            False,
            f"refs/heads-not/x is not a branch; {ALLOWED_ONLY}",
            False,
        ),
        # SHA-256 repositories
        (
            RefUpdate(ZERO256, C256, "refs/heads/openinspect/s1-new256"),
            True,
            "a new branch under the session's name",
            True,
        ),
        (
            RefUpdate(C256, ZERO256, "refs/heads/main"),
            False,
            "main is the base branch; push to openinspect/s1 instead",
            False,
        ),
    ],
)
def test_decide(command: RefUpdate, allowed: bool, reason: str, created: bool) -> None:
    decision = POLICY.decide(command)
    assert (decision.allowed, decision.reason, decision.created) == (allowed, reason, created)
    assert decision.update is command


@pytest.mark.parametrize(
    "ref",
    [
        "refs/heads/openinspect/../main",
        "refs/heads/openinspect/x.lock",
        "refs/heads/openinspect/.hidden",
        "refs/heads/openinspect/a b",
        "refs/heads/openinspect/a~1",
        "refs/heads/openinspect/a^",
        "refs/heads/openinspect/a:b",
        "refs/heads/openinspect/a\x01",
        "refs/heads/openinspect/x/",
        "refs/heads/openinspect//x",
        "refs/heads/openinspect/@{1}",
        "refs/heads/",
    ],
)
def test_invalid_branch_names_are_refused(ref: str) -> None:
    decision = POLICY.decide(create(ref))
    assert not decision.allowed
    assert decision.reason == f"{ref} is not a valid branch name"


def test_an_allowed_push_keeps_each_reason() -> None:
    commands = [update("refs/heads/openinspect/s1"), create("refs/heads/openinspect/s1-new")]
    decisions = POLICY.check(commands)
    assert [d.allowed for d in decisions] == [True, True]
    assert accepted(decisions)
    assert refusal_summary(decisions) == "push accepted"


def test_one_refused_command_refuses_the_whole_push() -> None:
    commands = [
        update("refs/heads/openinspect/s1"),
        update("refs/heads/main"),
        create("refs/heads/openinspect/s1-new"),
        create("refs/tags/v9"),
    ]
    decisions = POLICY.check(commands)
    assert not accepted(decisions)
    assert [(d.update.ref, d.allowed, d.reason) for d in decisions] == [
        ("refs/heads/openinspect/s1", False, ATOMIC_REFUSED),
        ("refs/heads/main", False, "main is the base branch; push to openinspect/s1 instead"),
        ("refs/heads/openinspect/s1-new", False, ATOMIC_REFUSED),
        ("refs/tags/v9", False, TAG_REFUSED),
    ]
    assert not any(d.created for d in decisions)
    assert refusal_summary(decisions).splitlines() == [
        "push refused",
        f"refs/heads/openinspect/s1: {ATOMIC_REFUSED}",
        "refs/heads/main: main is the base branch; push to openinspect/s1 instead",
        f"refs/heads/openinspect/s1-new: {ATOMIC_REFUSED}",
        f"refs/tags/v9: {TAG_REFUSED}",
    ]


def test_new_branches_lists_only_branches_the_push_created() -> None:
    commands = [
        create("refs/heads/openinspect/s1"),
        create("refs/heads/openinspect/s1-new"),
        update("refs/heads/openinspect/s1-mine"),
        create("refs/heads/openinspect/s2"),
        create("refs/heads/feature"),
        create("refs/tags/openinspect/t"),
    ]
    assert FRESH.new_branches(commands) == frozenset({"openinspect/s1", "openinspect/s1-new"})


def test_created_branches_grow_the_policy() -> None:
    assert not FRESH.decide(update("refs/heads/openinspect/s1-new")).allowed
    after = PushPolicy(
        "openinspect/s1",
        "main",
        created_branches=FRESH.new_branches([create("refs/heads/openinspect/s1-new")]),
    )
    assert after.decide(update("refs/heads/openinspect/s1-new")).allowed
    assert after.decide(delete("refs/heads/openinspect/s1-new")).allowed


def test_an_existing_session_branch_it_never_pushed_is_not_taken_over() -> None:
    """Someone else put ``openinspect/s1`` on the origin: the session may not build on it."""
    refused = FRESH.decide(update("refs/heads/openinspect/s1"))
    assert (refused.allowed, refused.reason) == (False, f"openinspect/s1 {TAKEN}")
    assert FRESH.decide(create("refs/heads/openinspect/s1")).allowed


def test_a_session_branch_another_session_claimed_is_refused_even_to_create() -> None:
    squatted = PushPolicy("openinspect/s1", "main", foreign_branches=frozenset({"openinspect/s1"}))
    decision = squatted.decide(create("refs/heads/openinspect/s1"))
    assert (decision.allowed, decision.reason) == (False, f"openinspect/s1 {FOREIGN}")


def test_base_branch_wins_over_a_created_or_prefixed_base() -> None:
    policy = PushPolicy(
        "openinspect/s2",
        "openinspect/s2-base",
        created_branches=frozenset({"openinspect/s2-base"}),
    )
    for command in (
        update("refs/heads/openinspect/s2-base"),
        delete("refs/heads/openinspect/s2-base"),
    ):
        decision = policy.decide(command)
        assert not decision.allowed
        assert decision.reason == (
            "openinspect/s2-base is the base branch; push to openinspect/s2 instead"
        )


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="both 'main'"):
        PushPolicy("main", "main")


def test_ref_update_kinds() -> None:
    assert create("refs/heads/x").is_create and not create("refs/heads/x").is_delete
    assert delete("refs/heads/x").is_delete and not delete("refs/heads/x").is_create
    assert not update("refs/heads/x").is_create and not update("refs/heads/x").is_delete
    assert update("refs/heads/a/b").branch == "a/b"
    assert update("refs/tags/a").branch is None


# A session given an existing branch (a pull request's head) instead of its own.
GRANTED = PushPolicy(
    session_branch="feature/login",
    base_branch="main",
    created_branches=frozenset({"openinspect/s1"}),  # ignored once granted
    granted=True,
)
GRANTED_ONLY = "this session may push only fast-forward updates of feature/login"


@pytest.mark.parametrize(
    ("command", "allowed", "reason"),
    [
        (update("refs/heads/feature/login"), True, "fast-forward only"),
        (delete("refs/heads/feature/login"), False, "cannot be deleted"),
        (create("refs/heads/feature/login"), False, "it is updated, not created"),
        (update("refs/heads/main"), False, "is the base branch"),
        (create("refs/heads/openinspect/s1"), False, GRANTED_ONLY),
        (update("refs/heads/openinspect/s1"), False, GRANTED_ONLY),
        (create("refs/heads/feature/login-2"), False, GRANTED_ONLY),
        (create("refs/tags/v1"), False, TAG_REFUSED),
    ],
)
def test_a_granted_branch_is_only_fast_forwarded(
    command: RefUpdate, allowed: bool, reason: str
) -> None:
    decision = GRANTED.decide(command)
    assert (decision.allowed, decision.fast_forward) == (allowed, allowed)
    assert reason in decision.reason
    assert not decision.created
    assert GRANTED.new_branches([command]) == frozenset()


def test_a_rewind_refuses_the_whole_push() -> None:
    ok = update("refs/heads/feature/login")
    decisions = refuse_rewinds(GRANTED.check([ok]), {ok.ref})
    assert [(d.allowed, d.reason) for d in decisions] == [(False, NOT_FAST_FORWARD)]
    both = [ok, update("refs/heads/feature/login")]
    assert refuse_rewinds(GRANTED.check(both), set()) == GRANTED.check(both)
    mixed = refuse_rewinds(
        [GRANTED.decide(ok), Decision(create("refs/heads/x"), True, "fine")], {ok.ref}
    )
    assert [d.reason for d in mixed] == [NOT_FAST_FORWARD, ATOMIC_REFUSED]
