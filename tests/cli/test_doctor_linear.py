"""``openinspect doctor`` with the Linear agent configured: it asks Linear (here the fake)
whether the OAuth client is good, says which workspaces the agent is installed in, and says
nothing of Linear when it is off. In-process: the check is ``doctor.linear_check``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from openinspect.cli.doctor import linear_check
from openinspect.settings import LinearSettings, Settings
from openinspect.store import Store
from openinspect.store.crypto import Sealer
from openinspect.testing.linear import FakeLinear


def settings(home: Path, **linear: object) -> Settings:
    return Settings(home=home, linear=LinearSettings.model_validate(linear))


async def test_the_doctor_checks_the_oauth_client_and_names_the_workspaces(
    tmp_path: Path,
) -> None:
    with FakeLinear(client_id="cid", client_secret="good-secret") as fake:
        good = settings(
            tmp_path,
            client_id="cid",
            client_secret="good-secret",
            webhook_secret="w",
            api_url=fake.api_url,
        )
        fresh = await linear_check(good)
        store = await Store.open(good.resolved_database_url, sealer=Sealer(b"k" * 32))
        await store.linear.save_install(
            org_id=fake.org.id,
            org_name="Fake Org",
            app_user_id=None,
            access_token="t",
            refresh_token=None,
            expires_at=None,
            scopes="read",
            installed_by=None,
        )
        await store.close()
        installed = await linear_check(good)
        bad = await linear_check(
            settings(
                tmp_path,
                client_id="cid",
                client_secret="wrong-secret",
                webhook_secret="w",
                api_url=fake.api_url,
            )
        )
    assert fresh is not None and fresh.ok and "no workspace" in fresh.detail
    assert installed is not None and installed.ok and "Fake Org" in installed.detail
    assert bad is not None and not bad.ok and "invalid_client" in bad.detail
    assert "wrong-secret" not in json.dumps(asdict(bad))


async def test_the_doctor_is_silent_without_linear_and_says_when_it_is_down(
    tmp_path: Path,
) -> None:
    assert await linear_check(settings(tmp_path)) is None
    down = await linear_check(
        settings(
            tmp_path,
            client_id="c",
            client_secret="s",
            webhook_secret="w",
            api_url="http://127.0.0.1:9",
        )
    )
    assert down is not None and not down.ok and "linear_unavailable" in down.detail
