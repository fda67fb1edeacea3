"""``/healthz`` answers anyone (a load balancer needs no token), but which replica answered (its
host name and process id) and how many sessions it holds are for admins only: a stranger or a
member learns that the server is up and nothing about the machine behind it."""

from __future__ import annotations

import socket

from openinspect.testing.asgi import InApp


async def test_healthz_tells_strangers_and_members_only_that_it_is_up(api: InApp) -> None:
    member = await api.member("mallory")
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, member.headers):
        answer = await api.http.get("/healthz", headers=headers)
        assert answer.status_code == 200
        body = answer.json()
        assert set(body) == {"status", "version"}, body
        assert socket.gethostname() not in answer.text


async def test_healthz_names_the_replica_to_an_admin(api: InApp) -> None:
    body = (await api.admin().call("GET", "/healthz")).json()
    assert body["replica"] == api.plane.manager.replica_id
    assert socket.gethostname() in body["replica"]
    assert body["live_sessions"] == len(api.plane.manager.live_actors())
