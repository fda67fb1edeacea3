"""Commands are data: every kind survives the trip through JSON (what a replica forwards over
the bus) as the same typed value, and the union refuses what is not a command."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError

from openinspect.domain import commands
from openinspect.domain.commands import (
    CancelPrompt,
    ForkSession,
    OpenPullRequest,
    SetPresence,
    StartSession,
    Stop,
    SubmitPrompt,
    Typing,
    UpdateSession,
    dump_command,
    parse_command,
)

EXAMPLES = [
    StartSession(
        repo="https://github.com/acme/app",
        base_branch="main",
        model="scripted:x",
        title="Fix",
        prompt="fix the adder",
        idempotency_key="k-1",
        origin_ref="slack:C1/1700000000.1",
    ),
    SubmitPrompt(session_id="ses_1", content="héllo ✓", client_request_id="r1", effort="low"),
    CancelPrompt(session_id="ses_1", prompt_id="prm_1"),
    Stop(session_id="ses_1"),
    Typing(session_id="ses_1"),
    SetPresence(session_id="ses_1", client_id="c0ffee", status="idle"),
    UpdateSession(session_id="ses_1", title="New", archived=False),
    OpenPullRequest(session_id="ses_1", title="PR", body="text", draft=True),
    ForkSession(session_id="ses_1", at_seq=7, title="Try another way"),
]


@pytest.mark.parametrize("command", EXAMPLES, ids=lambda c: c.type)
def test_each_command_round_trips_through_json(command: commands.Command) -> None:
    text = dump_command(command)
    back = parse_command(text)
    assert type(back) is type(command)
    assert back == command
    assert parse_command(text.encode()) == command


def test_the_union_lists_every_command_and_each_type_is_unique() -> None:
    members = typing.get_args(typing.get_args(commands.Command)[0])
    assert set(members) == {type(c) for c in EXAMPLES}
    types = [m.model_fields["type"].default for m in members]
    assert len(types) == len(set(types))
    # The commands to an existing session are the union minus StartSession.
    session_members = typing.get_args(typing.get_args(commands.SessionCommand)[0])
    # (ForkSession only reads its source: it is not forwarded to the source's owner.)
    assert set(session_members) == set(members) - {StartSession, ForkSession}


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "drop-database", "session_id": "ses_1"}',  # not a command
        '{"session_id": "ses_1"}',  # no type
        '{"type": "stop"}',  # no session
        '{"type": "stop", "session_id": "ses_1", "user_id": "usr_admin"}',  # no sender field
        '{"type": "start-session", "repo": "r", "origin": "slack"}',  # the door is not data
        '{"type": "submit-prompt", "session_id": "ses_1", "content": "x", "client_request_id": ""}',
        '{"type": "start-session", "repo": "r", "idempotency_key": "' + "k" * 129 + '"}',
        '{"type": "set-presence", "session_id": "ses_1", "client_id": "c", "status": "away"}',
    ],
)
def test_what_is_not_a_valid_command_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_command(text)


def test_commands_are_frozen() -> None:
    stop = Stop(session_id="ses_1")
    with pytest.raises(ValidationError):
        stop.session_id = "ses_2"  # type: ignore[misc]
