"""What ``openinspect automations`` builds from its options, and how it words what it prints.

No server code here (the CLI's start-up rule, ``cli/main.py``): the server checks every field
again and its refusal (code, message, hint) is what the person sees.

Conditions on the command line (``--condition``, repeatable; all must hold):

- ``PATH:OP:VALUE`` for ``equals``, ``contains`` and ``matches``, ``PATH:exists`` for
  ``exists``. The operator is the first ``:equals:``, ``:contains:`` or ``:matches:`` from the
  left (or a final ``:exists``): everything before it is the JSONPath, everything after it the
  value, colons included (``$.url:contains:https://``).
- The value of ``equals`` and ``contains`` is read as JSON when it is a JSON scalar (``3``,
  ``true``, ``null``, ``"3"``) and as text otherwise (``error``); that of ``matches`` is always
  a regular expression, as written.
- A JSON object, ``{"path": "$.level", "op": "equals", "value": "error"}``, for a path that
  itself contains one of those operator words.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from openinspect.errors import InvalidInput

PRESETS = {
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * 1",
    "monthly": "0 0 1 * *",
}
"""The server's presets (``automations.schedule.PRESETS``; a test keeps them in step)."""
CONDITION_OPS = ("equals", "contains", "matches")
"""The operators that take a value (``exists`` takes none)."""
GITHUB_EVENTS = (
    "pull_request.opened",
    "pull_request.synchronize",
    "pull_request.closed",
    "issue_comment",
    "check_failed",
)
_CONDITION_HINT = (
    "Write PATH:OP:VALUE (OP: equals, contains, matches), PATH:exists, or a JSON object "
    '{"path": …, "op": …, "value": …}'
)


def parse_condition(text: str) -> dict[str, Any]:
    """One ``--condition`` as the API's condition object (see the module docstring)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        return _json_condition(stripped)
    found = [(stripped.find(f":{op}:"), op) for op in CONDITION_OPS]
    found = [(at, op) for at, op in found if at > 0]
    if found:
        at, op = min(found)
        path, raw = stripped[:at], stripped[at + len(op) + 2 :]
        value = raw if op == "matches" else _scalar(raw)
        return {"path": path, "op": op, "value": value}
    if stripped.endswith(":exists") and len(stripped) > len(":exists"):
        return {"path": stripped.removesuffix(":exists"), "op": "exists"}
    raise InvalidInput(f"Cannot read the condition {text!r}", hint=_CONDITION_HINT)


def _json_condition(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise InvalidInput(
            f"The condition {text!r} is not valid JSON", hint=_CONDITION_HINT
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("path"), str) or "op" not in data:
        raise InvalidInput(
            f"The condition {text!r} needs a 'path' and an 'op'", hint=_CONDITION_HINT
        )
    return data


def _scalar(raw: str) -> Any:
    """A JSON scalar as itself; any other text as a string."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str | int | float | bool) or value is None else raw


def schedule_trigger(cron: str | None, preset: str | None, tz: str | None) -> dict[str, Any]:
    """A schedule trigger from ``--cron`` or ``--preset`` (one of them) and ``--tz``."""
    if (cron is None) == (preset is None):
        raise InvalidInput("Give either --cron or --preset", hint="e.g. --cron '0 3 * * *'")
    trigger: dict[str, Any] = {"kind": "schedule", "tz": tz or "UTC"}
    if preset is not None:
        if preset not in PRESETS:
            raise InvalidInput(
                f"Unknown preset {preset!r}", hint=f"Use one of: {', '.join(PRESETS)}"
            )
        trigger |= {"cron": PRESETS[preset], "preset": preset}
    else:
        trigger["cron"] = cron
    return trigger


def github_events(kinds: list[str]) -> list[str]:
    unknown = [k for k in kinds if k not in GITHUB_EVENTS]
    if unknown:
        raise InvalidInput(
            f"Unknown GitHub event {unknown[0]!r}", hint=f"Use one of: {', '.join(GITHUB_EVENTS)}"
        )
    return kinds


def describe_trigger(trigger: dict[str, Any]) -> str:
    """A trigger in a few words: ``schedule 0 3 * * * (Europe/Berlin)``, ``webhook (hmac)``…"""
    kind = trigger["kind"]
    if kind == "schedule":
        preset = f"{trigger['preset']}: " if trigger.get("preset") else ""
        return f"schedule {preset}{trigger['cron']} ({trigger['tz']})"
    if kind == "webhook":
        return f"webhook ({trigger.get('auth', 'bearer')})"
    if kind == "github":
        return "github " + ", ".join(trigger["events"])
    return str(kind)


def describe_status(automation: dict[str, Any]) -> str:
    """enabled; paused (why); degraded (how many runs in a row failed)."""
    status = automation["status"]
    if status == "paused":
        reason = automation.get("paused_reason")
        return f"paused ({reason})" if reason else "paused"
    if status == "degraded":
        failures = automation["consecutive_failures"]
        return f"degraded ({failures} failed run{'s' if failures != 1 else ''} in a row)"
    return str(status)


def describe_run(run: dict[str, Any] | None) -> str:
    """A run in a few words: ``succeeded 2026-12-02 13:00 (ses_…)``; ``never`` for none."""
    if run is None:
        return "never"
    session = f" ({run['session_id']})" if run.get("session_id") else ""
    return f"{run['status']} {when(run['created_at'])}{session}"


def when(iso: str | None) -> str:
    """An API time as ``YYYY-MM-DD HH:MM`` (in the offset it came with)."""
    return iso[:16].replace("T", " ") if iso else ""


def firing(iso: str) -> str:
    """A fire time in its zone's offset: ``Wed 2026-12-02 03:00+01:00``."""
    moment = datetime.fromisoformat(iso)
    return f"{moment:%a} {moment.isoformat(' ', 'minutes')}"
