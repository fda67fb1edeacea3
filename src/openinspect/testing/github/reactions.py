"""Reactions on a PR (as an issue), on its issue comments and on its review comments.

The same user reacting with the same content again gets the reaction it made (200 instead of
201); contents outside GitHub's eight are refused (422). GitHub sends no webhook for reactions.
"""

from __future__ import annotations

import time

from openinspect.testing.github.pulls import author_of, may_write_pulls
from openinspect.testing.github.records import REACTIONS, ReactionRec, RepoRec
from openinspect.testing.github.reviews import find_comment
from openinspect.testing.github.state import (
    ApiError,
    FakeState,
    Identity,
    not_found,
    validation_failed,
)


def subject_exists(repo: RepoRec, subject: str) -> bool:
    kind, _, ident = subject.partition(":")
    number = int(ident)
    if kind == "issue":
        return number in repo.pulls
    if kind == "issue_comment":
        return any(c.id == number for p in repo.pulls.values() for c in p.comments)
    try:
        find_comment(repo, number)
    except ApiError:
        return False
    return True


def react(
    state: FakeState, identity: Identity, repo: RepoRec, subject: str, content: object
) -> tuple[ReactionRec, bool]:
    """Add a reaction to ``subject``; returns it and whether it is new."""
    if not subject_exists(repo, subject):
        raise not_found()
    if not may_write_pulls(state, identity, repo):
        raise ApiError(403, "Resource not accessible by integration")
    if content not in REACTIONS:
        raise validation_failed(
            resource="Reaction",
            code="custom",
            field="content",
            message="content is not included in the list",
        )
    login, is_bot = author_of(state, identity)
    with state.change():
        for rec in repo.reactions:
            same_user = rec.user_login.lower() == login.lower()
            if rec.subject == subject and same_user and rec.content == content:
                return rec, False
        rec = ReactionRec.model_validate(
            {
                "id": state.next_id(),
                "subject": subject,
                "user_login": login,
                "user_is_bot": is_bot,
                "content": content,
                "created_at": time.time(),
            }
        )
        repo.reactions.append(rec)
        return rec, True


def of(repo: RepoRec, subject: str, content: str | None = None) -> list[ReactionRec]:
    if not subject_exists(repo, subject):
        raise not_found()
    return [
        r
        for r in list(repo.reactions)
        if r.subject == subject and (content is None or r.content == content)
    ]
