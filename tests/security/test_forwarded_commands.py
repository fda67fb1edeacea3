"""A forwarded command earns no trust for coming from a replica: the owner loads the sender by
id and authorises them again, so a command for a session the user may not see (or from a user
who does not exist) is refused on the owner with the usual ``session_not_found``, and nothing
changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from openinspect.domain.commands import Stop, UpdateSession
from openinspect.errors import SessionNotFound
from tests.sessions.test_ownership import Replicas, admin_of, new_session, replicas  # noqa: F401

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


async def test_a_forwarded_command_for_a_session_the_user_may_not_see_is_refused_on_the_owner(
    replicas: Replicas,  # noqa: F811
    origin: Path,
) -> None:
    a, b = await replicas("a"), await replicas("b")
    session = await new_session(a, origin)
    await b.manager.actor(session.id)  # B owns it
    member = await a.store.users.create(name="Mallory", email="m@e", role="member")
    owner = b.manager.replica_id

    # Sent straight to the owner, past A's own check (as a buggy or hostile replica would).
    for user_id in (member.id, "usr_nobody"):
        with pytest.raises(SessionNotFound):
            await a.commands.forwarder.send(
                owner, user_id, "api", UpdateSession(session_id=session.id, title="taken")
            )
        with pytest.raises(SessionNotFound):
            await a.commands.forwarder.send(owner, user_id, "api", Stop(session_id=session.id))
    stored = await a.store.sessions.get(session.id)
    assert stored is not None and stored.title == session.title
    assert member.id not in await a.store.sessions.participant_roles(session.id)

    # The admin who may see it gets through, so the refusal above was the authorisation.
    done = await a.commands.forwarder.send(
        owner, (await admin_of(a)).id, "api", UpdateSession(session_id=session.id, title="ok")
    )
    assert isinstance(done, dict) and done["title"] == "ok"
