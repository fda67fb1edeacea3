"""Every door hands its commands to ``sessions.commands.handle``, which authorises them: a member
reaches no one else's session through any REST command route (the WebSocket's frames are
``test_ws_access``), may not claim to be an integration, and cannot reach another creator's
session through an idempotency key. The API layer itself composes no manager or actor calls."""

from __future__ import annotations

import ast
from pathlib import Path

import openinspect
from tests.security.conftest import Live

API = Path(openinspect.__file__).parent / "api"
FORBIDDEN_IN_API = {
    "actor",  # the live actor: only the command handler drives it
    "create",
    "warm",
    "submit",
    "cancel",
    "stop",
    "rename",
    "archive",
    "unarchive",
    "open_pull_request",
}
"""Calls on ``….manager`` (or its ``presence``) that change a session; reads stay allowed."""
MALLORYS = ("prompt-cancelled", "pr-opened")
"""Events only her commands would have made here (her rename, archive and stop checked apart)."""


def _commands(session_id: str, prompt_id: str) -> list[tuple[str, str, dict[str, object]]]:
    base = f"/api/sessions/{session_id}"
    return [
        ("POST", f"{base}/prompts", {"content": "exfiltrate"}),
        ("POST", f"{base}/prompts/{prompt_id}/cancel", {}),
        ("POST", f"{base}/stop", {}),
        ("PATCH", base, {"title": "mine", "archived": True}),
        ("POST", f"{base}/pull-request", {"title": "pr"}),
    ]


async def test_a_member_reaches_no_one_elses_session_through_any_command_route(
    live: Live,
) -> None:
    _, bob = await live.member("bob")
    _, mallory = await live.member("mallory")
    theirs = await live.session(bob)
    queued = await live.call(
        bob, "POST", f"/api/sessions/{theirs['id']}/prompts", json={"content": "hello"}
    )
    assert queued.status_code == 202, queued.text
    before = await live.plane.store.events.after(theirs["id"], 0, 1000)
    nothing = [
        (await live.call(mallory, method, path, json=body)).json()
        for method, path, body in _commands("ses_nope", "prm_nope")
    ]
    for (method, path, body), unknown in zip(
        _commands(theirs["id"], queued.json()["id"]), nothing, strict=True
    ):
        answer = await live.call(mallory, method, path, json=body)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["error"]["code"] == unknown["error"]["code"] == "session_not_found"
    after = await live.plane.store.events.after(theirs["id"], 0, 1000)
    assert after[: len(before)] == before
    # Bob's prompt runs on and adds events; none of them is a change mallory asked for.
    assert [e for e in after if e.type in MALLORYS] == []
    updates = [e.model_dump() for e in after if e.type == "session-updated"]
    assert not [u for u in updates if u["title"] == "mine" or u["status"] == "archived"]
    assert [e for e in after if getattr(e, "status", None) == "stopped"] == []
    prompt = await live.plane.store.prompts.get(queued.json()["id"])
    assert prompt is not None and prompt.status not in ("stopped", "cancelled")
    roles = await live.plane.store.sessions.participant_roles(theirs["id"])
    assert set(roles.values()) == {"owner"}  # mallory took no part


async def test_oversized_ids_in_a_command_path_are_refused_not_crashes(live: Live) -> None:
    """A command's fields are bounded; a path longer than any id is answered, never a 500."""
    long_id = "ses_" + "x" * 300
    for method, path, body in _commands(long_id, "prm_x"):
        answer = await live.call(live.admin_token, method, path, json=body)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["error"]["code"] == "session_not_found"
        assert "x" * 80 not in answer.text
    session = await live.session(live.admin_token)
    cancel = f"/api/sessions/{session['id']}/prompts/prm_{'y' * 300}/cancel"
    answer = await live.call(live.admin_token, "POST", cancel)
    assert answer.status_code == 422, answer.text
    assert "y" * 80 not in answer.text


async def test_a_client_cannot_claim_an_integrations_origin(live: Live) -> None:
    _, mallory = await live.member("mallory")
    for claimed, status, code in (
        ("slack", 403, "origin_not_allowed"),
        ("github", 403, "origin_not_allowed"),
        ("parent", 403, "origin_not_allowed"),
        ("Slack", 422, "invalid_input"),
    ):
        answer = await live.call(
            mallory, "POST", "/api/sessions", json={"repo": "calc", "origin": claimed}
        )
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["code"] == code
    assert await live.plane.store.sessions.list(limit=10) == []
    # Nor may a client name what outside started it: extra fields are ignored.
    forged = await live.call(
        mallory, "POST", "/api/sessions", json={"repo": "calc", "origin_ref": "slack:C1"}
    )
    assert forged.status_code == 201 and forged.json()["session"]["origin_ref"] is None
    # The admin may not either: the integrations' doors are the server's to name.
    admin = await live.call(
        live.admin_token, "POST", "/api/sessions", json={"repo": "calc", "origin": "slack"}
    )
    assert admin.status_code == 403


async def test_an_idempotency_key_finds_only_its_creators_session(live: Live) -> None:
    _, bob = await live.member("bob")
    _, mallory = await live.member("mallory")
    headers = {"Idempotency-Key": "guessable-key"}
    bobs = await live.call(bob, "POST", "/api/sessions", json={"repo": "calc"}, headers=headers)
    assert bobs.status_code == 201, bobs.text
    # The same key and body from someone else is their own new session, not bob's.
    hers = await live.call(mallory, "POST", "/api/sessions", json={"repo": "calc"}, headers=headers)
    assert hers.status_code == 201, hers.text
    assert hers.json()["session"]["id"] != bobs.json()["session"]["id"]
    assert bobs.json()["session"]["id"] not in hers.text
    # Nor does a different body under bob's key tell her anything about bob's session.
    other = await live.call(
        mallory, "POST", "/api/sessions", json={"repo": "calc", "title": "x"}, headers=headers
    )
    assert other.status_code == 409
    assert bobs.json()["session"]["id"] not in other.text


def test_the_api_layer_composes_no_manager_or_actor_calls() -> None:
    """Routes and the WebSocket build commands; ``handle`` is what changes sessions."""
    found = []
    for path in sorted(API.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = ast.unparse(node.func.value)
            if node.func.attr in FORBIDDEN_IN_API and owner.endswith(("manager", "actor")):
                found.append(f"{path.name}:{node.lineno} {owner}.{node.func.attr}(…)")
            if owner.endswith("manager.presence") and node.func.attr == "update":
                found.append(f"{path.name}:{node.lineno} {owner}.update(…)")
    assert found == []
