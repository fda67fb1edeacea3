"""``openinspect serve``."""

from __future__ import annotations

import logging

from rich.console import Console

from openinspect.api.auth import ADMIN_TOKEN_FILE
from openinspect.api.server import Started, serve
from openinspect.settings import Settings

QUIET_LOGGERS = ("httpx", "httpcore")
"""Libraries that log every HTTP request at INFO (model providers' calls go through httpx): only
their warnings reach the server log, unless the log level is ``debug``."""


def configure_logging(level: str) -> None:
    """The server's log: ``level`` and up, one line per record, on stderr."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quiet = logging.DEBUG if level == "debug" else logging.WARNING
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)


async def run_server(console: Console, *, host: str | None, port: int | None) -> int:
    settings = Settings()
    if host is not None:
        settings.server.host = host
    if port is not None:
        settings.server.port = port
    configure_logging(settings.log_level)

    def started(info: Started) -> None:
        boot = info.plane.bootstrap
        console.print(f"[bold green]openinspect[/] serving at [bold]{info.url}[/]")
        console.print(f"  home: {settings.home_dir}   database: {settings.resolved_database_url}")
        console.print(f"  sandboxes: {info.plane.session_deps.provider.name}")
        if boot.token:
            label = "created admin token" if boot.created else "admin token"
            console.print(f"  {label}: [bold]{boot.token}[/]")
            console.print(f"  (also in {settings.home_dir / ADMIN_TOKEN_FILE}, mode 0600)")

    await serve(settings, on_started=started)
    return 0
