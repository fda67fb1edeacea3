"""What the CLI reads from this machine's openinspect home, without importing the server.

The client commands must start in well under a second, so they cannot import the settings tree
(pydantic) or the server modules just to learn two file names. The names here mirror theirs;
``tests/cli/test_startup.py`` keeps them in step.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = Path("~/.local/share/openinspect")
"""``settings.DEFAULT_HOME``."""
DEFAULT_PORT = 8765
"""``settings.DEFAULT_PORT``."""
SERVER_FILE = "server.json"
"""``api.server.SERVER_FILE``: the URL of the server running on this home."""
ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name
"""``api.auth.ADMIN_TOKEN_FILE``."""
_HOME_VARIABLE = "OPENINSPECT_HOME"


def home_dir() -> Path:
    """``Settings().home_dir``: OPENINSPECT_HOME (matched without regard to case, as the settings
    do), else the default, with ``~`` expanded."""
    for name, value in os.environ.items():
        if name.upper() == _HOME_VARIABLE:
            return Path(value).expanduser()
    return DEFAULT_HOME.expanduser()
