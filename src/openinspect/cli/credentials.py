"""Tokens the CLI signed in with, per server, in ``$OPENINSPECT_HOME/credentials.json`` (0600).

``openinspect login`` writes the token of a server and makes that server the current one;
``discover`` (in ``cli.client``) reads it; ``openinspect logout`` removes it. The file holds
bearer tokens: it is created readable by its owner only and rewritten whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CREDENTIALS_FILE = "credentials.json"


@dataclass
class Credentials:
    path: Path
    current: str | None = None
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, home: Path) -> Credentials:
        path = home / CREDENTIALS_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls(path)
        if not isinstance(data, dict):
            return cls(path)
        servers = data.get("servers")
        current = data.get("current")
        return cls(
            path,
            current if isinstance(current, str) else None,
            servers if isinstance(servers, dict) else {},
        )

    def token_for(self, url: str) -> str | None:
        entry = self.servers.get(url.rstrip("/"))
        token = entry.get("token") if isinstance(entry, dict) else None
        return token if isinstance(token, str) and token else None

    def set(self, url: str, token: str, **info: Any) -> None:
        url = url.rstrip("/")
        self.servers[url] = {"token": token, **info}
        self.current = url

    def remove(self, url: str) -> bool:
        url = url.rstrip("/")
        removed = self.servers.pop(url, None) is not None
        if self.current == url:
            self.current = None
        return removed

    def save(self) -> None:
        # Imported here: the store package pulls in SQLAlchemy, which reading must not pay for.
        from openinspect.store.crypto import write_private_file

        data = {"current": self.current, "servers": self.servers}
        write_private_file(self.path, (json.dumps(data, indent=2) + "\n").encode())
