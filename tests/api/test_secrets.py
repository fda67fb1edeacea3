"""Repo secrets over the REST API: admins set them one by one or from pasted ``.env`` text,
global or for a registered repo, list them (names, scopes and times: never a value), see what
a repo's boxes get (the repo's own over the global ones) and delete them; every refusal says
why without quoting a value."""

from __future__ import annotations

import httpx

from openinspect.testing.asgi import InApp

TOKEN = "sk-SECRET-api-0123456789"
REPO_TOKEN = "sk-SECRET-repo-9876543210"
ENV_TEXT = """\
# the deploy's secrets
export NPM_TOKEN=npm-SECRET-aaaa1111
DB_URL="postgres://app:SECRET-pw@db/app"   # primary
SIGNING_KEY='-----BEGIN-----
SECRET-key-material
-----END-----'
"""
VALUES = (TOKEN, REPO_TOKEN, "npm-SECRET-aaaa1111", "SECRET-pw", "SECRET-key-material")


def no_value_in(response: httpx.Response) -> None:
    for value in VALUES:
        assert value not in response.text, response.text


async def test_admins_set_list_and_delete_secrets_and_never_see_a_value(
    api: InApp, calc: str
) -> None:
    admin = api.admin()
    put = await admin.call("PUT", "/api/secrets/API_TOKEN", json={"value": TOKEN})
    assert put.status_code == 200, put.text
    assert put.json()["name"] == "API_TOKEN" and put.json()["scope"] == "global"
    assert put.json()["repo"] is None
    own = await admin.call(
        "PUT", "/api/secrets/API_TOKEN", params={"repo": calc}, json={"value": REPO_TOKEN}
    )
    assert own.status_code == 200, own.text
    assert (own.json()["scope"], own.json()["repo"]) == ("repo", calc)
    imported = await admin.call(
        "POST", "/api/secrets/import", params={"repo": calc}, json={"text": ENV_TEXT}
    )
    assert imported.status_code == 200, imported.text
    assert [s["name"] for s in imported.json()["imported"]] == [
        "NPM_TOKEN",
        "DB_URL",
        "SIGNING_KEY",
    ]

    listed = await admin.call("GET", "/api/secrets")
    assert [(s["scope"], s["repo"], s["name"]) for s in listed.json()["secrets"]] == [
        ("global", None, "API_TOKEN"),
        ("repo", calc, "API_TOKEN"),
        ("repo", calc, "DB_URL"),
        ("repo", calc, "NPM_TOKEN"),
        ("repo", calc, "SIGNING_KEY"),
    ]
    assert set(listed.json()["secrets"][0]) == {
        "name",
        "scope",
        "repo",
        "created_at",
        "updated_at",
        "shadowed",
    }
    for_repo = await admin.call("GET", "/api/secrets", params={"repo": calc})
    shadowed = {(s["scope"], s["name"]): s["shadowed"] for s in for_repo.json()["secrets"]}
    assert shadowed[("global", "API_TOKEN")] is True
    assert shadowed[("repo", "API_TOKEN")] is False
    # What a box of the repo gets, as the store opens it for the box.
    repo_id = (await api.plane.store.repos.find(calc)).id  # type: ignore[union-attr]
    box = await api.plane.store.secrets.values_for(repo_id)
    assert box["API_TOKEN"] == REPO_TOKEN and box["NPM_TOKEN"] == "npm-SECRET-aaaa1111"
    assert box["DB_URL"] == "postgres://app:SECRET-pw@db/app"
    assert box["SIGNING_KEY"] == "-----BEGIN-----\nSECRET-key-material\n-----END-----"

    gone = await admin.call("DELETE", "/api/secrets/API_TOKEN", params={"repo": calc})
    assert gone.status_code == 204
    again = await admin.call("DELETE", "/api/secrets/API_TOKEN", params={"repo": calc})
    assert (again.status_code, again.json()["error"]["code"]) == (404, "secret_not_found")
    assert (await api.plane.store.secrets.values_for(repo_id))["API_TOKEN"] == TOKEN
    for answer in (put, own, imported, listed, for_repo, gone, again):
        no_value_in(answer)


async def test_members_are_refused_every_verb(api: InApp, calc: str) -> None:
    await api.admin().call("PUT", "/api/secrets/API_TOKEN", json={"value": TOKEN})
    member = await api.member("bob")
    for method, path, body in (
        ("GET", "/api/secrets", None),
        ("PUT", "/api/secrets/API_TOKEN", {"value": "member-wants-this"}),
        ("POST", "/api/secrets/import", {"text": "A=abcdefgh"}),
        ("DELETE", "/api/secrets/API_TOKEN", None),
    ):
        for params in ({}, {"repo": calc}):
            refused = await member.call(method, path, params=params, json=body)
            assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
            no_value_in(refused)
    assert await api.plane.store.secrets.values_for(None) == {"API_TOKEN": TOKEN}


async def test_bad_names_values_and_text_are_refused_without_quoting_a_value(
    api: InApp, calc: str
) -> None:
    admin = api.admin()
    cases = [
        ("PUT", "/api/secrets/PATH", {}, {"value": "/SECRET/evil/bin"}, 422, "secret_invalid"),
        ("PUT", "/api/secrets/GIT_ASKPASS", {}, {"value": "SECRET-askpass"}, 422, "secret_invalid"),
        (
            "PUT",
            "/api/secrets/OPENINSPECT_X",
            {},
            {"value": "SECRET-x-value"},
            422,
            "secret_invalid",
        ),
        ("PUT", "/api/secrets/9LIVES", {}, {"value": "SECRET-lives"}, 422, "secret_invalid"),
        ("PUT", "/api/secrets/SHORT", {}, {"value": "abc"}, 422, "secret_invalid"),
        ("PUT", "/api/secrets/NUL", {}, {"value": "SECRET\u0000nul"}, 422, "secret_invalid"),
        ("PUT", "/api/secrets/BIG", {}, {"value": "é" * 9000}, 422, "secret_invalid"),
        ("PUT", "/api/secrets/HUGE", {}, {"value": "S" * 17_000}, 422, "invalid_input"),
        ("PUT", "/api/secrets/EXTRA", {}, {"value": "SECRET-v", "x": 1}, 422, "invalid_input"),
        ("PUT", "/api/secrets/A", {"repo": "nope"}, {"value": "SECRET-v"}, 404, "repo_not_found"),
        ("GET", "/api/secrets", {"repo": "nope"}, None, 404, "repo_not_found"),
        (
            "POST",
            "/api/secrets/import",
            {},
            {"text": "GOOD=SECRET-good-1\nbad SECRET-line\nLD_PRELOAD=SECRET-so"},
            422,
            "secret_invalid",
        ),
    ]
    for method, path, params, body, status, code in cases:
        refused = await admin.call(method, path, params=params, json=body)
        assert (refused.status_code, refused.json()["error"]["code"]) == (status, code), (
            path,
            refused.text,
        )
        assert "SECRET" not in refused.text, refused.text
    bad_import = await admin.call(
        "POST", "/api/secrets/import", json={"text": "GOOD=SECRET-good-1\nbad line\nPATH=/x/yz"}
    )
    message = bad_import.json()["error"]["message"]
    assert "line 2:" in message and "line 3:" in message
    assert await api.plane.store.secrets.listed() == []  # all or nothing


async def test_a_full_scope_is_refused_with_a_conflict(api: InApp) -> None:
    admin = api.admin()
    text = "".join(f"KEY_{n}=value-{n:04}\n" for n in range(100))
    assert (await admin.call("POST", "/api/secrets/import", json={"text": text})).status_code == 200
    over = await admin.call("PUT", "/api/secrets/ONE_MORE", json={"value": "value-more"})
    assert (over.status_code, over.json()["error"]["code"]) == (409, "secret_limit_reached")
    replace = await admin.call("PUT", "/api/secrets/KEY_7", json={"value": "value-new7"})
    assert replace.status_code == 200
