"""What a box's commands see of hibernation (:mod:`openinspect.runtime.hibernate`): nothing.

A hibernated runtime hands its state over in ``OPENINSPECT_RESUME_*`` variables and inherited
listening sockets. Commands of the resumed runtime must get neither (the variables describe the
bridge session; a listener inherited by a command would let it take the forwarders' port), and the
bridge token stays hidden as before."""

from __future__ import annotations

import pytest

from openinspect.sandboxes.bwrap import BwrapProvider
from openinspect.settings import Settings
from tests.sandboxes.conftest import (  # noqa: F401  (fixtures used by name)
    StartSandbox,
    bridge,
    repo_origin,
    settings,
)
from tests.sandboxes.conftest import start_sandbox as start_sandbox
from tests.sandboxes.test_bwrap_hibernate import IDLE_MARKER, REMOTE_PATH, until_runtime

pytestmark = pytest.mark.bwrap

BOOT_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 20.0


@pytest.fixture
def sleepy_provider(settings: Settings) -> BwrapProvider:  # noqa: F811
    settings.sandbox.bwrap.hibernate_s = 1.0
    return BwrapProvider.from_settings(settings)


async def test_a_resumed_box_gives_its_commands_no_resume_state_token_or_listener(
    sleepy_provider: BwrapProvider,
    start_sandbox: StartSandbox,
) -> None:
    box = await start_sandbox(sleepy_provider)
    await box.conn.wait_ready(BOOT_TIMEOUT_S)
    await box.bind(git_remote_path=REMOTE_PATH)
    await until_runtime(box, IDLE_MARKER)

    seen = await box.conn.exec(
        "env | cut -d= -f1 | grep '^OPENINSPECT_' ; echo --; "
        "for fd in /proc/self/fd/*; do readlink $fd; done; true",
        timeout_s=30,
    )
    assert seen.exit_code == 0
    names, _, fds = seen.stdout.partition("--\n")
    assert "OPENINSPECT_RESUME" not in names
    assert "OPENINSPECT_SANDBOX_TOKEN" not in names
    assert "OPENINSPECT_BRIDGE_URL" not in names
    assert "socket:" not in fds  # no inherited listener (nor the bridge connection)
