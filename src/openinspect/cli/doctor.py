"""``openinspect doctor``: check what openinspect needs on this machine, and say how to fix it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from rich.console import Console

from openinspect.agent.models import PROVIDER_SETUP, ModelRegistry
from openinspect.sandboxes.boxcheck import box_facts
from openinspect.sandboxes.boxuser import server_is_root
from openinspect.sandboxes.bwrap import probe_bwrap
from openinspect.sandboxes.limits import TMP_LIMIT, unenforced_limits
from openinspect.sandboxes.staging import workspace_mount
from openinspect.settings import Settings
from openinspect.store import Store


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


def _version(*argv: str) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else None


async def checks(settings: Settings) -> list[Check]:
    found: list[Check] = []
    git = _version("git", "--version")
    found.append(
        Check("git", git is not None, git or "not found", None if git else "apt-get install git")
    )
    problem = probe_bwrap()
    works = problem is None
    found.append(
        Check(
            "bubblewrap",
            works,
            "namespaces work" if works else str(problem),
            None
            if works
            else (
                "apt-get install bubblewrap (or allow unprivileged user namespaces:"
                " sysctl kernel.unprivileged_userns_clone=1); until then sandboxes "
                "fall back to the non-isolating 'process' provider"
            ),
        )
    )
    if works:
        found += box_checks(settings)
    # The interpreter of the backend sandboxes will use here.
    chosen = settings.sandbox.provider
    uses_bwrap = chosen == "bwrap" or (chosen == "auto" and works)
    interpreter = (settings.sandbox.bwrap if uses_bwrap else settings.sandbox.process).python
    python = _version(interpreter, "--version")
    found.append(
        Check(
            "sandbox python",
            python is not None,
            f"{interpreter}: {python or 'not found'}",
            None if python else "apt-get install python3 (the runtime runs on it)",
        )
    )
    try:
        store = await Store.open(settings.resolved_database_url)
        await store.close()
        found.append(Check("database", True, settings.resolved_database_url))
    except Exception as exc:  # any failure here is the finding
        found.append(
            Check(
                "database",
                False,
                f"{settings.resolved_database_url}: {exc}",
                "Check OPENINSPECT_DATABASE_URL and that the server is running",
            )
        )
    # The shipped demo scripts are always available; this check is about real providers.
    available = [
        m.id for m in ModelRegistry(settings).catalog() if m.available and m.provider != "scripted"
    ]
    found.append(
        Check(
            "models",
            bool(available),
            ", ".join(available) if available else "no provider key configured",
            None
            if available
            else "Set ANTHROPIC_API_KEY or OPENAI_API_KEY, or "
            "OPENINSPECT_MODELS__OPENAI_COMPATIBLE_BASE_URL; `openinspect demo` works without one",
        )
    )
    found += await provider_checks(settings)
    if (slack := await slack_check(settings)) is not None:
        found.append(slack)
    if (linear := await linear_check(settings)) is not None:
        found.append(linear)
    found.append(await server_check(settings.home_dir))
    found += limit_checks(settings, bwrap_works=works)
    return found


PROBE_TIMEOUT_S = 5.0
"""How long a provider or the server may take to answer doctor's one request."""
_REFUSED_KEY = (401, 403)
_SERVER_ERROR = 500


async def provider_checks(settings: Settings) -> list[Check]:
    """One request to each configured provider: does it answer, and does it take the key?
    Any answer short of a refused key or a server error counts (a local server may have no
    model list), so this costs nothing and needs no model name."""
    models = settings.models
    registry = ModelRegistry(settings)
    probes: list[tuple[str, str, dict[str, str], str]] = []
    if (key := settings.anthropic_key()) is not None:
        base = registry.base_url("anthropic:x").rstrip("/")
        headers = {"x-api-key": key.get_secret_value(), "anthropic-version": "2023-06-01"}
        probes.append(("anthropic", f"{base}/v1/models", headers, "ANTHROPIC_BASE_URL"))
    if (key := settings.openai_key()) is not None:
        base = registry.base_url("openai:x").rstrip("/")
        headers = {"Authorization": f"Bearer {key.get_secret_value()}"}
        probes.append(("openai", f"{base}/models", headers, "OPENAI_BASE_URL"))
    if models.openai_compatible_base_url:
        base = models.openai_compatible_base_url.rstrip("/")
        compat_key = models.openai_compatible_api_key
        headers = {"Authorization": f"Bearer {compat_key.get_secret_value()}"} if compat_key else {}
        setting = "OPENAI_COMPATIBLE_BASE_URL"
        probes.append(("openai-compatible", f"{base}/models", headers, setting))
    found = []
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as http:
        for provider, url, headers, setting in probes:
            found.append(await _probe(http, provider, url, headers, setting))
    return found


async def _probe(
    http: httpx.AsyncClient, provider: str, url: str, headers: dict[str, str], setting: str
) -> Check:
    name = f"provider: {provider}"
    base = url.rsplit("/", 1)[0]
    try:
        answer = await http.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return Check(
            name,
            False,
            f"no answer from {base}: {type(exc).__name__}",
            f"is the server at {base} running? check OPENINSPECT_MODELS__{setting}",
        )
    if answer.status_code in _REFUSED_KEY:
        return Check(
            name,
            False,
            f"{base} refused the API key (HTTP {answer.status_code})",
            PROVIDER_SETUP[provider].replace("Set ", "set a valid ", 1),
        )
    if answer.status_code >= _SERVER_ERROR:
        return Check(name, False, f"{base} answered HTTP {answer.status_code}", None)
    return Check(name, True, f"{base} answers")


async def slack_check(settings: Settings) -> Check | None:
    """With Slack configured: does the mode have what it needs, and does Slack take the bot
    token (``auth.test``)? None when Slack is off."""
    slack = settings.slack
    if not slack.enabled:
        return None
    missing = []
    if slack.mode == "events" and slack.signing_secret is None:
        missing.append("OPENINSPECT_SLACK__SIGNING_SECRET")
    if slack.mode == "socket" and slack.app_token is None:
        missing.append("OPENINSPECT_SLACK__APP_TOKEN")
    if missing:
        return Check(
            "slack",
            False,
            f"slack.mode={slack.mode} needs " + " and ".join(missing),
            "see docs/slack.md, 'Set it up'",
        )
    from slack_sdk.errors import SlackApiError

    from openinspect.integrations.slack.client import web_client

    client = web_client(slack)
    client.timeout = int(PROBE_TIMEOUT_S)
    try:
        answer = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "error")
        return Check(
            "slack",
            False,
            f"Slack refused the bot token ({error})",
            "set a valid OPENINSPECT_SLACK__BOT_TOKEN (xoxb-…, from the app's OAuth page)",
        )
    except Exception as exc:  # aiohttp's connection errors and timeouts
        return Check(
            "slack",
            False,
            f"no answer from {slack.resolved_api_url}: {type(exc).__name__}",
            "check the network, or OPENINSPECT_SLACK__API_URL",
        )
    team, user = answer.get("team", "?"), answer.get("user", "?")
    return Check("slack", True, f"{slack.mode} mode; the bot is @{user} in {team}")


async def linear_check(settings: Settings) -> Check | None:
    """With the Linear agent configured: does Linear take the OAuth client (a refresh with a
    token that cannot exist: ``invalid_grant`` means the client id and secret are good), and in
    which workspaces is the agent installed? None when Linear is off."""
    linear = settings.linear
    if not linear.enabled:
        return None
    from openinspect.errors import LinearAuthFailed, LinearError
    from openinspect.integrations.linear.client import LinearClient

    client = LinearClient(linear.model_copy(update={"request_timeout_s": PROBE_TIMEOUT_S}))
    try:
        await client.refresh("openinspect-doctor-probe")
    except LinearAuthFailed as exc:
        if exc.linear_code != "invalid_grant":
            return Check(
                "linear",
                False,
                f"Linear refused the OAuth client ({exc.linear_code or exc.code})",
                "set OPENINSPECT_LINEAR__CLIENT_ID and OPENINSPECT_LINEAR__CLIENT_SECRET to the "
                "application's (Linear: Settings, API, OAuth applications)",
            )
    except LinearError as exc:
        return Check(
            "linear",
            False,
            f"no answer from {linear.token_url}: {exc.code}",
            "check the network, or OPENINSPECT_LINEAR__API_URL",
        )
    finally:
        await client.aclose()
    try:
        store = await Store.open(settings.resolved_database_url)
        try:
            installs = await store.linear.installs()
        finally:
            await store.close()
    except Exception:  # the database check reports it
        installs = []
    if not installs:
        return Check(
            "linear",
            True,
            "the OAuth client is good; installed in no workspace yet",
            "an admin opens /integrations/linear/install on this server (see docs/linear.md)",
        )
    names = ", ".join(i.org_name or i.org_id for i in installs)
    return Check("linear", True, f"the OAuth client is good; installed in {names}")


async def server_check(home: Path) -> Check:
    """Whether the openinspect server the CLI would talk to answers its health check."""
    from openinspect.cli.credentials import Credentials
    from openinspect.cli.local import DEFAULT_PORT, SERVER_FILE

    url = os.environ.get("OPENINSPECT_URL") or Credentials.load(home).current
    info = home / SERVER_FILE
    if not url and info.exists():
        url = json.loads(info.read_text()).get("url")
    url = (url or f"http://127.0.0.1:{DEFAULT_PORT}").rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as http:
            answer = await http.get(f"{url}/healthz")
        ok = answer.status_code == httpx.codes.OK
        detail = f"{url} answers" if ok else f"{url}/healthz answered HTTP {answer.status_code}"
    except httpx.HTTPError as exc:
        ok, detail = False, f"no answer from {url}: {type(exc).__name__}"
    return Check(
        "server",
        ok,
        detail,
        None if ok else "start it with `openinspect serve`, or set OPENINSPECT_URL to its URL",
    )


LIMIT_FIXES = {
    "memory": "run the server where it may create cgroups: root with cgroup v1, or a delegated "
    "cgroup v2 subtree (systemd: Delegate=yes)",
    "processes": "as for memory: the pids controller",
    "cpu": "as for memory: the cpu controller",
    TMP_LIMIT: "install bubblewrap 0.5 or later",
    "workspace disk": "run the server as root with loop devices and e2fsprogs, or set "
    "OPENINSPECT_SANDBOX__WORKSPACE_MIB=0 to accept unbounded workspaces",
}


def limit_checks(settings: Settings, *, bwrap_works: bool) -> list[Check]:
    """One line per box limit: enforced on this host, or why not (warnings: the exit status
    does not depend on them)."""
    if not bwrap_works:
        return [Check("limits", False, "no box limit applies: sandboxes are not bwrap boxes")]
    sandbox = settings.sandbox
    wanted = {
        "memory": f"{sandbox.memory_mib} MiB" if sandbox.memory_mib > 0 else None,
        "processes": str(sandbox.max_processes) if sandbox.max_processes > 0 else None,
        "cpu": f"{sandbox.cpus:g} of {os.cpu_count()} cores" if sandbox.cpus > 0 else None,
        TMP_LIMIT: f"{sandbox.tmp_mib} MiB" if sandbox.tmp_mib > 0 else None,
        "workspace disk": f"{sandbox.workspace_mib} MiB" if sandbox.workspace_mib > 0 else None,
    }
    unenforced = unenforced_limits(settings)
    found = []
    for name, value in wanted.items():
        if value is None:
            found.append(Check(f"limit: {name}", False, "off in the settings"))
        elif name in unenforced:
            why = f"{value} is not enforced: {unenforced[name]}"
            found.append(Check(f"limit: {name}", False, why, LIMIT_FIXES.get(name)))
        else:
            found.append(Check(f"limit: {name}", True, f"{value} per box"))
    return found


BOX_WARNINGS = frozenset({"box workspace mount"})
"""Box findings that weaken a box without breaking it: reported, not failing the doctor."""


def box_checks(settings: Settings) -> list[Check]:
    """How bwrap boxes run here, from a real test box: who they are on the host, whether the
    kernel knobs and nested user namespaces are closed, what of the host they can still see."""
    facts = box_facts(settings.sandbox.bwrap.box_user)
    if facts.error is not None or facts.user is None:
        return [Check("box", False, facts.error or "no box could be started")]
    user = facts.user
    who = f"uid {user.uid} ({user.name})"
    return [
        Check(
            "box user",
            user.uid != 0 and facts.uid_in_box == user.uid,
            f"boxes run as host {who}, "
            + ("a dedicated user (the server is root)" if user.switch else "the server's own user"),
            None
            if user.uid != 0
            else "set OPENINSPECT_SANDBOX__BWRAP__BOX_USER to an unprivileged user",
        ),
        Check(
            "box kernel knobs",
            bool(facts.knobs_read_only),
            "/proc/sys and the other kernel knobs are read-only in a box"
            if facts.knobs_read_only
            else "a box can open /proc/sys for writing",
            None if facts.knobs_read_only else "report this: boxes bind /proc/sys read-only",
        ),
        Check(
            "box nested user namespaces",
            bool(facts.nested_userns_refused),
            ("refused" + (" (bwrap --disable-userns)" if facts.nested_userns_flag else ""))
            if facts.nested_userns_refused
            else "a box may create user namespaces of its own",
            None
            if facts.nested_userns_refused
            else "install bubblewrap 0.8 or later, which can forbid them (--disable-userns)",
        ),
        workspace_mount_check(settings),
    ]


WORKSPACE_MOUNTS = {
    "image": "a loop-mounted image per session: a box's mount table shows its root as '/'",
    "overlay": "an overlay staged in a user namespace: a box's mount table shows its root as '/' "
    "and no host path",
}


def workspace_mount_check(settings: Settings) -> Check:
    """Which workspace mount boxes get here; a bind mount (whose host path a box can read in
    its mount table) is a warning."""
    mount = workspace_mount(settings.workspaces_dir, settings.sandbox.workspace_mib)
    if not mount.names_host_path:
        return Check("box workspace mount", True, WORKSPACE_MOUNTS[mount.kind])
    fix = (
        "give the server loop devices and e2fsprogs, and a sandbox.workspace_mib above 0"
        if server_is_root()
        else "allow unprivileged user namespaces and overlayfs in them (Linux 5.11 or later), "
        "and install util-linux's unshare"
    )
    return Check(
        "box workspace mount",
        False,
        f"a bind mount of the host directory, whose path a box sees in /proc/self/mountinfo "
        f"({mount.why}); nothing else of the host is named in a box",
        fix,
    )


async def run_doctor(console: Console, *, json_mode: bool) -> int:
    results = await checks(Settings())
    if json_mode:
        for check in results:
            sys.stdout.write(json.dumps(asdict(check)) + "\n")
    else:
        for check in results:
            mark = "[green]✔[/]" if check.ok else "[red]✘[/]"
            console.print(f"{mark} [bold]{check.name}[/]: {check.detail}")
            if check.fix:
                console.print(f"    [dim]fix: {check.fix}[/]")
    return exit_status(results)


def exit_status(results: list[Check]) -> int:
    """1 when anything fails: a configured provider that does not answer or refuses its key,
    an unreachable server, a missing tool. Having no model key is not a failure (the demo and
    scripted models need none); limits and box warnings weaken a box without breaking it (a
    laptop cannot mount images as non-root)."""
    return 0 if all(c.ok for c in results if c.name != "models" and not _warning(c)) else 1


def _warning(check: Check) -> bool:
    return check.name in BOX_WARNINGS or check.name == "limits" or check.name.startswith("limit: ")
