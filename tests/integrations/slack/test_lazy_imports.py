"""A server with Slack off pays nothing for it: everything a server imports to start (the app,
its routes, the control plane, every built-in service) leaves slack_sdk and aiohttp unloaded
(they cost a few hundred milliseconds of start-up)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import importlib, sys
import openinspect.api.server, openinspect.api.app, openinspect.controlplane, openinspect.cli.main
from openinspect.services.registry import BUILTIN_SERVICES
for target in BUILTIN_SERVICES.values():
    importlib.import_module(target.partition(":")[0])
print(sorted(m for m in sys.modules if m.split(".")[0] in ("slack_sdk", "aiohttp")))
"""


def test_nothing_of_slack_loads_when_a_server_starts_without_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
