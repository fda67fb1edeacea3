"""Who is watching a session: one entry per connected client, merged per user."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

PresenceStatus = Literal["active", "idle"]


@dataclass
class _Watcher:
    user_id: str
    name: str
    status: PresenceStatus


class Presence:
    def __init__(self) -> None:
        self._watchers: defaultdict[str, dict[str, _Watcher]] = defaultdict(dict)

    def join(self, session_id: str, client_id: str, user_id: str, name: str) -> None:
        self._watchers[session_id][client_id] = _Watcher(user_id, name, "active")

    def update(self, session_id: str, client_id: str, status: PresenceStatus) -> None:
        watcher = self._watchers.get(session_id, {}).get(client_id)
        if watcher is not None:
            watcher.status = status

    def leave(self, session_id: str, client_id: str) -> None:
        watchers = self._watchers.get(session_id)
        if watchers is not None:
            watchers.pop(client_id, None)
            if not watchers:
                del self._watchers[session_id]

    def snapshot(self, session_id: str) -> list[dict[str, Any]]:
        """One entry per user: active if any of their clients is active."""
        users: dict[str, dict[str, Any]] = {}
        for watcher in self._watchers.get(session_id, {}).values():
            entry = users.setdefault(
                watcher.user_id,
                {"user_id": watcher.user_id, "name": watcher.name, "status": "idle", "clients": 0},
            )
            entry["clients"] += 1
            if watcher.status == "active":
                entry["status"] = "active"
        return sorted(users.values(), key=lambda e: e["name"])
