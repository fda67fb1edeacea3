"""The one typed settings tree.

Every field reads from the environment with the prefix ``OPENINSPECT_``; nested sections use a
double underscore, e.g. ``OPENINSPECT_SANDBOX__PROVIDER=process``. Every field has a description:
``docs/settings.md`` is generated from this tree and a test keeps the two in step.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from openinspect.egress.allowlist import parse_entries
from openinspect.runtime.address import unix_url

DEFAULT_HOME = Path("~/.local/share/openinspect")
DEFAULT_PORT = 8765
DEFAULT_MODEL = "anthropic:claude-sonnet-4-6"
MAX_SOCKET_PATH = 100
DEFAULT_BRIDGE_MESSAGES_PER_S = 1000.0
"""A 200 MB command output is about 3,000 chunk messages; boot logs are one message a line."""
DEFAULT_BRIDGE_BYTES_PER_S = 32 * 1024 * 1024
DEFAULT_BOOT_LOG_MAX_BYTES = 1024 * 1024
DEFAULT_BOOT_LOG_MAX_LINES = 5000
DEFAULT_TOOL_EVENT_OUTPUT_CHARS = 256 * 1024
DEFAULT_LIVE_OUTPUT_INTERVAL_MS = 200
DEFAULT_LIVE_OUTPUT_CHARS_PER_S = 64 * 1024
DEFAULT_REPLAY_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_IDLE_STOP_S = 600.0
DEFAULT_IDLE_STOP_WATCHED_S = 1800.0
DEFAULT_DRAFT_TTL_S = 3600.0
DEFAULT_TIDY_INTERVAL_S = 30.0
DEFAULT_PRESENCE_TTL_S = 30.0
DEFAULT_MAX_WATCHERS_PER_SESSION = 500
DEFAULT_MAX_WATCHERS_PER_USER = 200
DEFAULT_WEBHOOK_DELIVERIES_KEEP_DAYS = 14.0
"""GitHub redelivers for days, not weeks."""
DEFAULT_WEBHOOK_PRUNE_INTERVAL_S = 3600.0
DEFAULT_SERVICE_LEASE_TTL_S = 30.0
DEFAULT_SERVICE_BACKOFF_MAX_S = 300.0
DEFAULT_SESSION_LEASE_TTL_S = 10.0
DEFAULT_FORWARD_TIMEOUT_S = 30.0
DEFAULT_FAILOVER_INTERVAL_S = 2.0
DEFAULT_EVICT_IDLE_S = 60.0
DEFAULT_SCHEDULER_INTERVAL_S = 20.0
DEFAULT_AUTOMATION_RUNS_POLL_S = 1.0
DEFAULT_EGRESS_MAX_CONNECTIONS = 32
DEFAULT_EGRESS_IDLE_TIMEOUT_S = 300.0
DEFAULT_EGRESS_CONNECT_TIMEOUT_S = 10.0
DEFAULT_EGRESS_MAX_HEAD_BYTES = 32 * 1024


class ServerSettings(BaseModel):
    """How the control plane listens."""

    host: str = Field("127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(DEFAULT_PORT, description="TCP port of the HTTP server (0 picks a free one).")
    public_url: str | None = Field(
        None, description="URL people and clients use to reach this server, if not host:port."
    )
    ws_compression: bool = Field(
        False,
        description="Offer permessage-deflate on session WebSockets. It is per connection (each "
        "frame is compressed once per client), which costs more CPU in fan-out than it saves "
        "on a fast network; turn it on for clients on slow links (bench/fanout.py compares).",
    )


class SessionSettings(BaseModel):
    """Limits on sessions and their prompt queues."""

    max_unfinished_prompts: int = Field(
        10, description="Queued plus running prompts allowed per session."
    )
    max_prompt_chars: int = Field(64_000, description="Longest prompt accepted, in characters.")
    replay_events: int = Field(
        500, description="Durable events sent to a client when it joins a session."
    )
    replay_max_bytes: int = Field(
        DEFAULT_REPLAY_MAX_BYTES,
        description="Most bytes of stored events a joining or resuming client gets at once "
        "(at least the newest event); older ones are paged with history.",
    )
    history_page_max: int = Field(500, description="Largest page of older events a client gets.")
    ws_token_ttl_s: int = Field(300, description="Lifetime of a WebSocket token, in seconds.")
    ws_auth_recheck_s: float = Field(
        15.0,
        description="How often an open WebSocket re-reads that its token is live and its user "
        "may see the session (also checked on every command), in seconds.",
    )
    ws_send_timeout_s: float = Field(
        10.0,
        description="A WebSocket client that takes no frame for this long is cut off (4009), "
        "in seconds.",
    )
    ws_queue_frames: int = Field(
        10_000,
        ge=1,
        description="Frames that may wait for one WebSocket client; a client further behind is "
        "cut off (4009) and resyncs, so a slow client never holds up the others.",
    )
    ws_batch_interval_ms: float = Field(
        5.0,
        ge=0,
        le=1000,
        description="A WebSocket client that reads batch messages (the web app) gets at most one "
        "message per this many milliseconds: frames that come meanwhile go out together, so a "
        "busy session costs one send per client per interval, not one per frame. 0 sends each "
        "burst at once.",
    )
    presence_ttl_s: float = Field(
        DEFAULT_PRESENCE_TTL_S,
        ge=0.3,
        le=3600,
        description="How long a watcher's presence lasts unless its server renews it (every "
        "third of this), in seconds: the watchers of a server that died vanish within it.",
    )
    max_watchers_per_session: int = Field(
        DEFAULT_MAX_WATCHERS_PER_SESSION,
        ge=1,
        description="Connected WebSocket clients one session may have across all servers; "
        "past it a new socket is closed with 4029.",
    )
    max_watchers_per_user: int = Field(
        DEFAULT_MAX_WATCHERS_PER_USER,
        ge=1,
        description="Connected WebSocket clients one person may have across all sessions and "
        "servers; past it a new socket is closed with 4029.",
    )
    max_active_per_user: int = Field(
        5,
        description="Sessions one member may have working at once (with a queued or running "
        "prompt of theirs); past it a new session or prompt is refused (429). Admins: no limit.",
    )
    stop_grace_s: float = Field(
        3.0, description="Seconds a stopped command gets after SIGTERM before SIGKILL."
    )
    max_commit_file_bytes: int = Field(
        5 * 1024 * 1024,
        ge=1,
        description="Largest file the end-of-prompt commit adds, in bytes; bigger ones stay out "
        "of the commit (and are named in a warning).",
    )
    idle_stop_s: float = Field(
        DEFAULT_IDLE_STOP_S,
        ge=0,
        description="A sandbox with no queued or running prompt is stopped after this many "
        "seconds without work while nobody watches the session; the next prompt boots a new "
        "one on the same workspace and branch. 0: never stop idle sandboxes.",
    )
    idle_stop_watched_s: float = Field(
        DEFAULT_IDLE_STOP_WATCHED_S,
        ge=0,
        description="The same, while someone has the session open (web or CLI watching), "
        "in seconds. 0: never stop a watched sandbox.",
    )
    draft_ttl_s: float = Field(
        DEFAULT_DRAFT_TTL_S,
        ge=0,
        description="A draft (a session created without a prompt, as the web app does when you "
        "start typing) that never got a prompt is deleted this many seconds after it was "
        "created, with any sandbox it started. 0: keep drafts.",
    )
    tidy_interval_s: float = Field(
        DEFAULT_TIDY_INTERVAL_S,
        ge=0,
        description="How often the idle-sandbox reaper (on every server) and the draft sweep "
        "(on one server at a time) run, in seconds. 0: neither runs.",
    )


class ServiceSettings(BaseModel):
    """Background services: which run, and how one-replica services share the work."""

    draft_sweep_enabled: bool = Field(
        True,
        description="Run the draft sweep: delete abandoned drafts (sessions.draft_ttl_s). One "
        "server at a time runs it.",
    )
    idle_reaper_enabled: bool = Field(
        True,
        description="Run the idle-sandbox reaper: stop idle sandboxes (sessions.idle_stop_s) and "
        "those of deleted sessions. Every server runs it over the sandboxes it runs.",
    )
    image_builds_enabled: bool = Field(
        True,
        description="Run the repo image builder: build the images of repos that opted in "
        "('openinspect repos image enable') when they have none, when asked, and when their "
        "base branch moved (sandbox.images.rebuild_interval_s). One server at a time runs it.",
    )
    warm_pool_enabled: bool = Field(
        True,
        description="Run the warm pool: keep each repo's pool of ready boxes "
        "('openinspect repos pool set'). Every server keeps its own.",
    )
    webhook_prune_enabled: bool = Field(
        True,
        description="Run the pruning of old webhook delivery ids (kept to recognise a "
        "redelivery). One server at a time runs it.",
    )
    webhook_deliveries_keep_days: float = Field(
        DEFAULT_WEBHOOK_DELIVERIES_KEEP_DAYS,
        ge=1,
        description="Days a webhook delivery id is kept, so a redelivery within them is "
        "handled once; older ones are deleted.",
    )
    webhook_prune_interval_s: float = Field(
        DEFAULT_WEBHOOK_PRUNE_INTERVAL_S,
        gt=0,
        description="How often old webhook delivery ids are pruned, in seconds.",
    )
    failover_enabled: bool = Field(
        True,
        description="Run the failover pass: take over the sessions of a server that died "
        "(ownership.failover_interval_s). Every server runs it.",
    )
    spend_wake_enabled: bool = Field(
        True,
        description="Wake the sessions paused at a spend limit when any server changes a "
        "limit (over the bus). Every server runs it over the sessions it owns.",
    )
    evict_enabled: bool = Field(
        True,
        description="Run the eviction of idle live sessions (ownership.evict_idle_s). Every "
        "server runs it over the sessions it owns.",
    )
    scheduler_enabled: bool = Field(
        True,
        description="Run the automation scheduler: fire due schedules once per fire time and "
        "repair runs a crash left behind. One server at a time runs it.",
    )
    scheduler_interval_s: float = Field(
        DEFAULT_SCHEDULER_INTERVAL_S,
        gt=0,
        le=60,
        description="How often the automation scheduler looks for due schedules, in seconds "
        "(a schedule fires at most this late).",
    )
    automation_runs_enabled: bool = Field(
        True,
        description="Run the automation outcome consumer: mark runs running, succeeded or "
        "failed from their prompts' events (a durable feed cursor), pause an automation after "
        "3 failed runs in a row, and start queued runs. One server at a time runs it.",
    )
    automation_runs_poll_s: float = Field(
        DEFAULT_AUTOMATION_RUNS_POLL_S,
        gt=0,
        le=60,
        description="How often the automation outcome consumer reads the event feed, in seconds.",
    )
    slack_outbound_enabled: bool = Field(
        True,
        description="Run the Slack outbound service when Slack is configured: keep each "
        "session thread's status message current, post final messages and the agent's "
        "notifications (a durable feed cursor and an outbox). One server at a time runs it.",
    )
    outbox_enabled: bool = Field(
        True,
        description="Run the outbox delivery service when GitHub's review bot or Linear is "
        "configured: post the reviews, reactions, comments and agent activities decided from "
        "the event feed, each once. One server at a time runs it.",
    )
    lease_ttl_s: float = Field(
        DEFAULT_SERVICE_LEASE_TTL_S,
        ge=0.1,
        le=3600,
        description="Lease time of a one-server-at-a-time service, in seconds; its server "
        "renews it every third of that, and when that server dies another takes the service "
        "over within about this long.",
    )
    backoff_max_s: float = Field(
        DEFAULT_SERVICE_BACKOFF_MAX_S,
        gt=0,
        description="Longest pause before a failing service is retried, in seconds (the pause "
        "doubles from the service's interval with each failure in a row).",
    )


class OwnershipSettings(BaseModel):
    """Several replicas: how a server owns its live sessions, forwards commands to the owner of
    another's, and takes over the sessions of a server that died."""

    lease_ttl_s: float = Field(
        DEFAULT_SESSION_LEASE_TTL_S,
        ge=1,
        le=3600,
        description="Lease time of a live session, in seconds; its owner renews every lease it "
        "holds every third of that. A server that dies loses its sessions after at most this "
        "long, and another server takes them over at its next failover pass.",
    )
    forward_timeout_s: float = Field(
        DEFAULT_FORWARD_TIMEOUT_S,
        gt=0,
        le=600,
        description="How long a server waits for the owner of a session to answer a command it "
        "forwarded, in seconds; then the command fails with owner_unreachable (503).",
    )
    failover_interval_s: float = Field(
        DEFAULT_FAILOVER_INTERVAL_S,
        gt=0,
        description="How often every server looks for sessions with work whose owner died (a "
        "running or queued prompt, a sandbox up) and takes them over, in seconds.",
    )
    evict_idle_s: float = Field(
        DEFAULT_EVICT_IDLE_S,
        ge=0,
        description="A live session with nothing queued or running and no sandbox up is "
        "dropped from memory (and its lease freed) after this many seconds without work; the "
        "next command loads it again, on any server. 0: keep live sessions until the server "
        "stops.",
    )


DEFAULT_RUNTIME_PYTHON = "/usr/bin/python3"
LEGACY_SANDBOX_KEYS = {"python": ("bwrap", "process"), "box_user": ("bwrap",)}
"""Flat ``sandbox.*`` settings of earlier releases → the backend sections that took them over
(``OPENINSPECT_SANDBOX__PYTHON`` still sets both backends' interpreter)."""


DEFAULT_HIBERNATE_S = 30.0


class BwrapSettings(BaseModel):
    """What only the ``bwrap`` backend reads (the box limits above are every backend's)."""

    python: str = Field(
        DEFAULT_RUNTIME_PYTHON,
        description="Interpreter of the in-box runtime; must live under /usr (the box sees the "
        "host's /usr read-only). OPENINSPECT_SANDBOX__PYTHON sets this and process's.",
    )
    box_user: str = Field(
        "openinspect-box",
        description=(
            "Host user that boxes run as when the server runs as root: a user name "
            "(created as a system user without home or shell when missing) or 'uid:gid' "
            "(numbers, never 0). Ignored when the server is not root: boxes then run as the "
            "server's own user. OPENINSPECT_SANDBOX__BOX_USER, its earlier name, still sets it."
        ),
    )
    hibernate_s: float = Field(
        DEFAULT_HIBERNATE_S,
        ge=0,
        description=(
            "Seconds a box's runtime has nothing to do (no request, no forwarded connection) "
            "before it hibernates: it execs into a small idle process that keeps the bridge "
            "and heartbeats (about a quarter of the memory), and back into the full runtime "
            "when a request comes (docs/sandboxes.md, 'What a box costs'). 0: never."
        ),
    )


class ProcessSettings(BaseModel):
    """What only the ``process`` backend reads."""

    python: str = Field(
        DEFAULT_RUNTIME_PYTHON,
        description="Interpreter of the runtime, started as a plain host process. "
        "OPENINSPECT_SANDBOX__PYTHON sets this and bwrap's.",
    )


DEFAULT_EGRESS_ALLOW = (
    # Python
    "pypi.org",
    "files.pythonhosted.org",
    # JavaScript
    "registry.npmjs.org",
    "registry.yarnpkg.com",
    # Rust, Go, Ruby, Java
    "crates.io",
    "index.crates.io",
    "static.crates.io",
    "proxy.golang.org",
    "sum.golang.org",
    "rubygems.org",
    "repo.maven.apache.org",
    # Debian and Ubuntu packages
    "deb.debian.org",
    "security.debian.org",
    "archive.ubuntu.com",
    "security.ubuntu.com",
)
"""Package registries. Not github.com: a box that reaches it could push to any repo an
agent finds credentials for, or fetch code nobody reviewed; a repo that needs it lists it."""


class EgressSettings(BaseModel):
    """The egress proxy: a box reaches the network only through it, only to allowed hosts."""

    enabled: bool = Field(
        True,
        description="Give boxes egress through the proxy (HTTP_PROXY in the box); off: no "
        "network at all.",
    )
    allow: list[str] = Field(
        list(DEFAULT_EGRESS_ALLOW),  # pydantic copies it for each instance
        description="Hosts every box may reach: 'host' (ports 443 and 80), '*.domain' (its "
        "subdomains), 'host:port', IP literals ('10.0.0.5:3141', '[fd00::5]:443'). Only an exact "
        "entry may resolve to a private or loopback address. A repo adds its own with "
        "'openinspect repos egress'. Default: the main package registries (a JSON list).",
    )
    max_connections: int = Field(
        DEFAULT_EGRESS_MAX_CONNECTIONS,
        ge=1,
        description="Egress connections one box may have open at once (per server).",
    )
    idle_timeout_s: float = Field(
        DEFAULT_EGRESS_IDLE_TIMEOUT_S,
        gt=0,
        description="An egress connection that moves no byte this long is closed.",
    )
    connect_timeout_s: float = Field(
        DEFAULT_EGRESS_CONNECT_TIMEOUT_S,
        gt=0,
        description="Time to resolve and connect to an allowed host.",
    )
    max_head_bytes: int = Field(
        DEFAULT_EGRESS_MAX_HEAD_BYTES,
        ge=1024,
        description="Largest request head the proxy reads (request line and headers).",
    )

    @field_validator("allow")
    @classmethod
    def _entries(cls, value: list[str]) -> list[str]:
        return [str(entry) for entry in parse_entries(value)]


DEFAULT_IMAGE_REBUILD_INTERVAL_S = 1800.0
DEFAULT_IMAGE_CHECK_INTERVAL_S = 60.0
DEFAULT_IMAGES_KEPT = 2


class ImageSettings(BaseModel):
    """Repo images: a box per repo booted in ``build`` mode (``setup.sh`` once) and captured, so
    that new sessions start from it (``repo_image`` mode). Repos opt in one by one."""

    rebuild_interval_s: float = Field(
        DEFAULT_IMAGE_REBUILD_INTERVAL_S,
        ge=60,
        description="Least time between two builds of a repo's image started because its base "
        "branch moved, in seconds (a build asked for with 'openinspect repos image build' "
        "does not wait).",
    )
    check_interval_s: float = Field(
        DEFAULT_IMAGE_CHECK_INTERVAL_S,
        gt=0,
        description="How often the image builder looks for repos whose image is missing, asked "
        "for or behind their base branch, in seconds.",
    )
    kept: int = Field(
        DEFAULT_IMAGES_KEPT,
        ge=1,
        description="Good images kept per repo and base branch, newest first; older ones' "
        "archives are deleted.",
    )


DEFAULT_POOL_MAX_PER_REPO = 10
DEFAULT_POOL_REFILL_INTERVAL_S = 5.0


class PoolSettings(BaseModel):
    """The warm pool: ready boxes made ahead of time per repo (``openinspect repos pool``)."""

    max_per_repo: int = Field(
        DEFAULT_POOL_MAX_PER_REPO,
        ge=0,
        le=1000,
        description="Largest pool size an admin may set for one repo (each replica keeps that "
        "many ready boxes of the repo). 0: no pools on this server.",
    )
    refill_interval_s: float = Field(
        DEFAULT_POOL_REFILL_INTERVAL_S,
        gt=0,
        description="How often each replica checks its pools (made boxes still alive, sizes "
        "changed); a claimed box is replaced at once, not on this clock.",
    )


DEFAULT_SNAPSHOT_MAX_MIB = 2048
DEFAULT_SNAPSHOT_MAX_FILES = 200_000
DEFAULT_SNAPSHOTS_KEPT = 2


class SandboxSettings(BaseModel):
    """Where and how sandboxes run."""

    provider: str = Field(
        "auto",
        description="Sandbox backend: 'bwrap', 'process', or 'auto' (bwrap where it works).",
    )
    setup_timeout_s: float = Field(300, description="Time limit of .openinspect/setup.sh.")
    start_timeout_s: float = Field(120, description="Time limit of .openinspect/start.sh.")
    boot_timeout_s: float = Field(
        600, description="Time a sandbox may take from start to ready before it is failed."
    )
    heartbeat_interval_s: float = Field(30, description="How often the runtime sends a heartbeat.")
    heartbeat_timeout_s: float = Field(
        90, description="Silence after which a sandbox is considered lost."
    )
    max_processes: int = Field(
        1024,
        ge=0,
        description="Processes and threads one sandbox may have at once (its cgroup's pids.max; "
        "RLIMIT_NPROC of its commands where no cgroup binds it). 0: no limit.",
    )
    memory_mib: int = Field(
        4096,
        ge=0,
        description="Memory one sandbox may use, its /tmp included, in MiB (cgroup memory limit, "
        "swap included); past it the kernel's OOM killer ends its largest process. 0: no limit.",
    )
    cpus: float = Field(
        1.0,
        ge=0,
        description="CPU time one sandbox may use, in cores (a CFS quota over a 100 ms period); "
        "keep it below the host's core count so a busy box leaves the server room. 0: no limit.",
    )
    cpu_weight: int = Field(
        50,
        ge=0,
        le=10_000,
        description="A sandbox's CPU share against the server's other work when both are busy "
        "(cgroup v2 cpu.weight scale, 1-10000, where 100 is a default process group; v1 "
        "cpu.shares gets weight x 1024 / 100).",
    )
    tmp_mib: int = Field(
        1024,
        ge=0,
        description="Size of a sandbox's /tmp, in MiB (a tmpfs: what it holds counts against "
        "memory_mib too). 0: bwrap's default (half the host's memory).",
    )
    workspace_mib: int = Field(
        10240,
        ge=0,
        description="Disk space of a session's workspace, in MiB: a sparse ext4 image per session "
        "loop-mounted at the workspace (needs a root server). 0: no limit.",
    )
    max_running_per_user: int = Field(
        5,
        description="Sandboxes running at once for the sessions one member created; an idle "
        "one is stopped to make room, else a new prompt is refused (429). Admins: no limit.",
    )
    max_live: int = Field(
        0,
        ge=0,
        description="Sandboxes this server process runs at once, across every user (each holds "
        "memory, processes and a workspace); a box past it does not start and its session says "
        "so (sandbox_unavailable). 0: no limit.",
    )
    bridge_messages_per_s: float = Field(
        DEFAULT_BRIDGE_MESSAGES_PER_S,
        gt=0,
        description="Bridge messages per second a sandbox may send (token bucket, one second "
        "of burst); answers to running calls wait, other messages over it are dropped.",
    )
    bridge_bytes_per_s: int = Field(
        DEFAULT_BRIDGE_BYTES_PER_S,
        gt=0,
        description="Bridge bytes per second read from a sandbox; past it, reading pauses.",
    )
    boot_log_max_bytes: int = Field(
        DEFAULT_BOOT_LOG_MAX_BYTES,
        ge=0,
        description="Boot log bytes kept per sandbox; then one 'boot log truncated' line.",
    )
    boot_log_max_lines: int = Field(
        DEFAULT_BOOT_LOG_MAX_LINES,
        ge=0,
        description="Boot log lines kept per sandbox; then one 'boot log truncated' line.",
    )
    egress: EgressSettings = Field(
        default_factory=EgressSettings, description="The egress proxy and its allow-list."
    )
    pool: PoolSettings = Field(
        default_factory=PoolSettings, description="The warm pool of ready boxes per repo."
    )
    snapshots: bool = Field(
        True,
        description="Snapshot a box after each prompt and before an idle box stops, and restore "
        "the newest snapshot in the session's next box (providers that can; bwrap can).",
    )
    snapshot_max_mib: int = Field(
        DEFAULT_SNAPSHOT_MAX_MIB,
        gt=0,
        description="File content a snapshot may hold, in MiB; a bigger workspace is not "
        "snapshotted (a warning says so), and a restore refuses an archive past it.",
    )
    snapshot_max_files: int = Field(
        DEFAULT_SNAPSHOT_MAX_FILES,
        gt=0,
        description="Files, directories and symlinks a snapshot may hold (as snapshot_max_mib).",
    )
    snapshots_kept: int = Field(
        DEFAULT_SNAPSHOTS_KEPT,
        ge=1,
        description="Snapshots kept per session, newest first; older ones are deleted.",
    )
    snapshots_dir: Path | None = Field(
        None,
        description="Where snapshot archives are kept (default: <home>/snapshots). Replicas "
        "that run boxes must all see the same directory (shared storage): a session that "
        "moves to a replica that cannot read its snapshot fails to restore it, visibly.",
    )
    images: ImageSettings = Field(
        default_factory=ImageSettings,
        description="Repo images (providers that keep snapshots; bwrap does).",
    )
    bwrap: BwrapSettings = Field(
        default_factory=BwrapSettings, description="The bwrap backend's own settings."
    )
    process: ProcessSettings = Field(
        default_factory=ProcessSettings, description="The process backend's own settings."
    )

    @model_validator(mode="before")
    @classmethod
    def _backend_sections(cls, data: Any) -> Any:
        """Move the flat settings of earlier releases into their backend sections (a value
        set in the section itself wins)."""
        if not isinstance(data, dict) or not LEGACY_SANDBOX_KEYS.keys() & data.keys():
            return data
        data = dict(data)
        for key, backends in LEGACY_SANDBOX_KEYS.items():
            if key not in data:
                continue
            value = data.pop(key)
            for backend in backends:
                section = data.get(backend)
                if isinstance(section, BaseModel):
                    section = section.model_dump(exclude_unset=True)
                section = dict(section or {})
                section.setdefault(key, value)
                data[backend] = section
        return data


class AgentSettings(BaseModel):
    """The builtin agent harness and its limits."""

    default_model: str = Field(
        DEFAULT_MODEL, description="Model used when a session names none ('provider:model')."
    )
    max_steps: int = Field(200, description="Model requests allowed per prompt.")
    max_wall_s: float = Field(3600, description="Wall-clock time allowed per prompt, in seconds.")
    max_cost_usd: float = Field(10.0, description="Model spend allowed per prompt, in US dollars.")
    max_tokens_per_prompt: int = Field(
        20_000_000,
        ge=1,
        description="Tokens (input and output, summed over its model requests) allowed per "
        "prompt: the safety net beside the step and spend limits; past it the prompt ends "
        "with 'token_limit'.",
    )
    spend_recheck_s: float = Field(
        30.0,
        gt=0,
        description="How often a session whose queue a spend limit paused checks the limit "
        "again, in seconds (a limit raised on this server wakes it at once).",
    )
    instructions_chars: int = Field(
        32 * 1024,
        ge=1024,
        le=256 * 1024,
        description="Characters of a repo's AGENTS.md (or CLAUDE.md) given to the agent, at "
        "the root and in each directory it works in; the rest is cut with a note.",
    )
    skill_chars: int = Field(
        24 * 1024,
        ge=1024,
        le=64 * 1024,
        description="Characters of a managed skill's body the load_skill tool returns; the "
        "rest is cut with a note.",
    )
    tool_output_chars: int = Field(
        30_000,
        description="Tool output the model gets: two thirds from the start, one third from the "
        "end, and a notice of what was left out between.",
    )
    tool_event_output_chars: int = Field(
        DEFAULT_TOOL_EVENT_OUTPUT_CHARS,
        description="Tool output kept in the stored tool-result event: half from the start, "
        "half from the end, and a notice of what was left out between.",
    )
    bash_timeout_s: float = Field(
        600, description="Default time limit of one bash tool call, in seconds."
    )
    bash_max_timeout_s: float = Field(
        3600, description="Largest time limit the agent may ask for one bash call."
    )
    live_output_interval_ms: int = Field(
        DEFAULT_LIVE_OUTPUT_INTERVAL_MS,
        ge=20,
        le=5000,
        description="A running command's output reaches watchers as one tool-output-delta per "
        "call at most this often (the first chunk at once), in milliseconds.",
    )
    live_output_chars_per_s: int = Field(
        DEFAULT_LIVE_OUTPUT_CHARS_PER_S,
        ge=1024,
        description="Live command output sent per session and second; beyond it deltas carry "
        "the newest output and say how much they left out (the stored result has it all).",
    )
    mcp_connect_timeout_s: float = Field(
        20,
        gt=0,
        description="Time an MCP server has to open and list its tools at a prompt's start; "
        "one that takes longer is a warning and the prompt goes on without it.",
    )
    mcp_call_timeout_s: float = Field(
        120, gt=0, description="Time one MCP tool call has to answer, in seconds."
    )


class ModelProviderSettings(BaseModel):
    """Credentials and endpoints of model providers. These never reach a sandbox."""

    anthropic_api_key: SecretStr | None = Field(None, description="Anthropic API key.")
    anthropic_base_url: str | None = Field(None, description="Anthropic API base URL override.")
    openai_api_key: SecretStr | None = Field(None, description="OpenAI API key.")
    openai_base_url: str | None = Field(None, description="OpenAI API base URL override.")
    openai_compatible_base_url: str | None = Field(
        None,
        description="Base URL of an OpenAI-compatible server (Ollama, vLLM, OpenRouter…) for "
        "'openai-compatible:<model>'.",
    )
    openai_compatible_api_key: SecretStr | None = Field(
        None, description="API key for the OpenAI-compatible server, if it needs one."
    )
    scripted_dir: Path | None = Field(
        None,
        description="Directory of JSON scripts usable as 'scripted:<file name>' models (tests, "
        "demos). Unset: only the shipped 'scripted:demo-…' scripts work. Anyone who can start "
        "a session can replay any file in it.",
    )

    @field_validator("scripted_dir", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        # An empty variable means "off", not the server's working directory.
        return None if isinstance(value, str) and not value.strip() else value


GITHUB_WEB_URL = "https://github.com"
GITHUB_API_URL = "https://api.github.com"


class GitHubBotSettings(BaseModel):
    """The review bot (the GitHub App's bot user): reviews pull requests, answers mentions,
    fixes on request, and turns review feedback on a session's pull request into its next
    prompt. On with the App and the webhook secret configured, unless turned off here."""

    enabled: bool = Field(True, description="Turn the review bot on (with the App configured).")
    slug: str | None = Field(
        None,
        max_length=100,
        description="The App's slug; mentions are @<slug> or @<slug>[bot]. Default: read from "
        "GitHub (GET /app) once.",
    )
    auto_review: bool = Field(
        True, description="Review every new pull request (a repo's own setting wins)."
    )
    review_drafts: bool = Field(False, description="Also review draft pull requests on opening.")
    review_bot_authors: bool = Field(
        False, description="Also review pull requests opened by bots (other Apps, Dependabot)."
    )
    allowed_users: list[str] = Field(
        default_factory=list,
        description="GitHub logins that may ask the bot for anything; empty: anyone with write, "
        "maintain or admin on the repo (read from GitHub on every request).",
    )
    app_user: str = Field(
        "github-app",
        description="Login of the openinspect user the bot acts as when the GitHub user who "
        "asked has no openinspect account (reviews only; fixes need an account).",
    )
    model: str | None = Field(
        None,
        description="Model of review sessions; default a repo's own, else agent.default_model.",
    )
    diff_max_bytes: int = Field(
        200_000, gt=0, description="Largest part of a pull request's diff put in the prompt."
    )
    feedback: bool = Field(
        True,
        description="Turn review comments and requested changes on a pull request a session "
        "opened into that session's next prompt.",
    )
    max_feedback_prompts: int = Field(
        3,
        ge=1,
        le=50,
        description="Most feedback prompts sent automatically into a session per pull request.",
    )
    comment_max_chars: int = Field(
        8_000, gt=0, description="Longest comment or review text read from GitHub."
    )


class GitHubSettings(BaseModel):
    """GitHub or GitHub Enterprise Server: the App (installation tokens for git and PRs), OAuth
    sign-in, and webhooks. Tokens and keys never reach a sandbox."""

    web_url: str = Field(
        GITHUB_WEB_URL,
        description="Web base URL: OAuth pages and git remotes (your GHES host for Enterprise).",
    )
    api_url: str | None = Field(
        None,
        description="REST API base URL; default https://api.github.com for github.com, "
        "<web_url>/api/v3 otherwise.",
    )
    app_id: int | None = Field(None, description="GitHub App id.")
    app_private_key: SecretStr | None = Field(
        None, description="GitHub App private key, PEM (PKCS#1 or PKCS#8)."
    )
    app_private_key_path: Path | None = Field(
        None, description="File holding the GitHub App private key, instead of app_private_key."
    )
    installation_id: int | None = Field(
        None, description="App installation to use; default: looked up per repository."
    )
    client_id: str | None = Field(None, description="OAuth client id (of the GitHub App).")
    client_secret: SecretStr | None = Field(None, description="OAuth client secret.")
    webhook_secret: SecretStr | None = Field(
        None, description="Secret that signs webhook deliveries (HMAC-SHA256)."
    )
    token_refresh_margin_s: float = Field(
        300, description="An installation token is replaced this long before it expires."
    )
    access_check: bool = Field(
        True,
        description="Require that a user can read a repo through their own GitHub identity "
        "before starting a session on it. Turn off only for single-tenant installs.",
    )
    access_cache_ttl_s: float = Field(
        60, description="How long a positive or negative repo access check is remembered."
    )
    request_timeout_s: float = Field(30, description="Timeout of one GitHub API request.")
    webhook_max_bytes: int = Field(
        5 * 1024 * 1024, description="Largest webhook body accepted, in bytes."
    )
    bot: GitHubBotSettings = Field(default_factory=lambda: GitHubBotSettings())

    @property
    def resolved_api_url(self) -> str:
        if self.api_url:
            return self.api_url.rstrip("/")
        web = self.web_url.rstrip("/")
        return GITHUB_API_URL if web == GITHUB_WEB_URL else f"{web}/api/v3"

    def private_key_pem(self) -> str | None:
        if self.app_private_key is not None:
            return self.app_private_key.get_secret_value()
        if self.app_private_key_path is not None:
            return self.app_private_key_path.expanduser().read_text()
        return None

    @property
    def app_configured(self) -> bool:
        return self.app_id is not None and (
            self.app_private_key is not None or self.app_private_key_path is not None
        )

    @property
    def oauth_configured(self) -> bool:
        return self.client_id is not None and self.client_secret is not None


SLACK_API_URL = "https://slack.com/api/"


class SlackSettings(BaseModel):
    """The Slack app: mentions and DMs start sessions, thread replies continue them, one status
    message per thread is kept current. Off until ``bot_token`` is set. Tokens stay in the
    control plane; the box never sees them."""

    mode: Literal["events", "socket"] = Field(
        "events",
        description="How Slack reaches the server: 'events' (the Events API, POSTs to "
        "/slack/events; needs a public URL) or 'socket' (Socket Mode; needs app_token).",
    )
    bot_token: SecretStr | None = Field(
        None, description="Bot user OAuth token (xoxb-…); setting it turns Slack on."
    )
    signing_secret: SecretStr | None = Field(
        None, description="Signing secret that signs Events API and interactivity requests."
    )
    app_token: SecretStr | None = Field(
        None, description="App-level token (xapp-…, scope connections:write) for Socket Mode."
    )
    api_url: str = Field(
        SLACK_API_URL, description="Web API base URL (a local fake's, in tests and demos)."
    )
    channel_repos: dict[str, str] = Field(
        default_factory=dict,
        description="Default repo per channel: channel id → owner/name (or a local repo's "
        "name), used when a message names none.",
    )
    allow_unlinked: bool = Field(
        False,
        description="Let Slack users with no linked openinspect account start sessions, as the "
        "app's own identity (app_user). Off: they are asked to link first.",
    )
    app_user: str = Field(
        "slack-app",
        description="Login of the openinspect user the app acts as for unlinked Slack users "
        "(when allow_unlinked is on); made on first use, as a member.",
    )
    match_email: bool = Field(
        True,
        description="Link a Slack user to the openinspect user with the same email, read from "
        "Slack's profile (needs users:read.email); off: only the link flow links.",
    )
    notify_channels: list[str] = Field(
        default_factory=list,
        description="Channel ids the agent's notify tool may post to besides its own thread.",
    )
    classifier_model: str | None = Field(
        None,
        description="Model that picks the repo when a message names none; default "
        "agent.default_model.",
    )
    status_interval_s: float = Field(
        2.0, description="Least time between two edits of a thread's status message."
    )
    timestamp_tolerance_s: int = Field(
        300, description="Oldest request timestamp accepted (X-Slack-Request-Timestamp)."
    )
    event_max_bytes: int = Field(
        256 * 1024, description="Largest Events API or interactivity body accepted, in bytes."
    )
    link_code_ttl_s: int = Field(
        900, description="Lifetime of a one-time account link code, in seconds."
    )
    request_timeout_s: float = Field(15, description="Timeout of one Slack Web API call.")

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None

    @property
    def resolved_api_url(self) -> str:
        """The Web API base, ending in ``/`` as slack_sdk expects."""
        return self.api_url.rstrip("/") + "/"


LINEAR_API_URL = "https://api.linear.app"
LINEAR_AUTHORIZE_URL = "https://linear.app/oauth/authorize"
LINEAR_SCOPES = "read,write,app:assignable,app:mentionable"


class LinearSettings(BaseModel):
    """The Linear agent: an issue delegated to the app, or a mention of it, starts a session;
    its progress shows as the agent session's activities. Off until the OAuth client and the
    webhook secret are set. Tokens stay in the control plane, sealed; the box never sees them."""

    client_id: str | None = Field(None, description="OAuth client id of the Linear application.")
    client_secret: SecretStr | None = Field(None, description="OAuth client secret.")
    webhook_secret: SecretStr | None = Field(
        None, description="Secret that signs the application's webhooks (Linear-Signature)."
    )
    api_url: str = Field(
        LINEAR_API_URL,
        description="API base URL: GraphQL at <api_url>/graphql, tokens at <api_url>/oauth/token "
        "(a local fake's, in tests and demos).",
    )
    authorize_url: str = Field(
        LINEAR_AUTHORIZE_URL, description="OAuth authorization page (the install's first step)."
    )
    scopes: str = Field(LINEAR_SCOPES, description="OAuth scopes asked for at install.")
    team_repos: dict[str, str] = Field(
        default_factory=dict,
        description="Repo per Linear team: team key (ENG) → owner/name (or a local repo's name).",
    )
    project_repos: dict[str, str] = Field(
        default_factory=dict,
        description="Repo per Linear project: project id or name → repo; wins over team_repos.",
    )
    label_repos: dict[str, str] = Field(
        default_factory=dict,
        description="Repo per issue label: label name → repo; used when no team or project "
        "names one.",
    )
    classifier_model: str | None = Field(
        None,
        description="Model that picks the repo when no mapping does; default agent.default_model.",
    )
    match_email: bool = Field(
        True,
        description="Act as the openinspect user with the same email as the Linear user who "
        "asked; off (or no match): as app_user.",
    )
    app_user: str = Field(
        "linear-app",
        description="Login of the openinspect user the agent acts as for Linear users with no "
        "matching account; made on first use, as a member.",
    )
    timestamp_tolerance_s: int = Field(
        60, description="Largest gap between a webhook's webhookTimestamp and now, in seconds."
    )
    event_max_bytes: int = Field(
        1024 * 1024, description="Largest webhook body accepted, in bytes."
    )
    request_timeout_s: float = Field(15, description="Timeout of one Linear API call.")

    @property
    def enabled(self) -> bool:
        return (
            self.client_id is not None
            and self.client_secret is not None
            and self.webhook_secret is not None
        )

    @property
    def graphql_url(self) -> str:
        return self.api_url.rstrip("/") + "/graphql"

    @property
    def token_url(self) -> str:
        return self.api_url.rstrip("/") + "/oauth/token"


WEB_TOKEN_TTL_S = 14 * 24 * 3600
LOGIN_LINK_TTL_S = 24 * 3600


class AuthSettings(BaseModel):
    """Who may sign in, and with what role. Sign-in fails closed: with no allowlist set, nobody
    may sign in through GitHub unless allow_all_users is on."""

    allowed_users: list[str] = Field(
        default_factory=list, description="GitHub logins allowed to sign in."
    )
    allowed_orgs: list[str] = Field(
        default_factory=list, description="GitHub organisations whose members may sign in."
    )
    allowed_email_domains: list[str] = Field(
        default_factory=list,
        description="Email domains (of a verified GitHub email) whose owners may sign in.",
    )
    allow_all_users: bool = Field(
        False, description="Let any GitHub user sign in (unsafe; only when no list is set)."
    )
    admin_users: list[str] = Field(
        default_factory=list, description="GitHub logins that get the admin role at sign-in."
    )
    web_token_ttl_s: int = Field(
        WEB_TOKEN_TTL_S,
        ge=60,
        description="Lifetime of a browser sign-in (GitHub, a pasted token, a sign-in link), in "
        "seconds; the browser then shows the sign-in page again.",
    )
    login_link_ttl_s: int = Field(
        LOGIN_LINK_TTL_S,
        ge=60,
        le=30 * 24 * 3600,
        description="How long a sign-in link minted by an admin stays usable (once), in seconds.",
    )
    encryption_key: SecretStr | None = Field(
        None,
        description="Base64 of 32 bytes: AES-256-GCM key for OAuth tokens at rest; default a "
        "key file created in home.",
    )


class Settings(BaseSettings):
    """Root of the settings tree."""

    model_config = SettingsConfigDict(
        env_prefix="OPENINSPECT_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    home: Path = Field(
        DEFAULT_HOME, description="Directory for the database, workspaces, tokens and sockets."
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the store; default a SQLite file in home. "
        "Use postgresql+asyncpg://… in production.",
    )
    bus_url: str = Field(
        "memory://", description="Pub/sub backend: 'memory://' (one process) or redis://…"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Server log level."
    )
    server: ServerSettings = Field(default_factory=lambda: ServerSettings())
    sessions: SessionSettings = Field(default_factory=lambda: SessionSettings())
    services: ServiceSettings = Field(default_factory=lambda: ServiceSettings())
    ownership: OwnershipSettings = Field(default_factory=lambda: OwnershipSettings())
    sandbox: SandboxSettings = Field(default_factory=lambda: SandboxSettings())
    agent: AgentSettings = Field(default_factory=lambda: AgentSettings())
    models: ModelProviderSettings = Field(default_factory=lambda: ModelProviderSettings())
    github: GitHubSettings = Field(default_factory=lambda: GitHubSettings())
    slack: SlackSettings = Field(default_factory=lambda: SlackSettings())
    linear: LinearSettings = Field(default_factory=lambda: LinearSettings())
    auth: AuthSettings = Field(default_factory=lambda: AuthSettings())
    anthropic_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("OPENINSPECT_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"),
        description="Shortcut for models.anthropic_api_key; also read from ANTHROPIC_API_KEY.",
    )
    openai_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("OPENINSPECT_OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="Shortcut for models.openai_api_key; also read from OPENAI_API_KEY.",
    )

    @property
    def home_dir(self) -> Path:
        """``home`` with ``~`` expanded."""
        return self.home.expanduser()

    @property
    def resolved_database_url(self) -> str:
        """The store URL, defaulting to a SQLite file in home."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.home_dir / 'openinspect.db'}"

    @property
    def workspaces_dir(self) -> Path:
        return self.home_dir / "workspaces"

    @property
    def mirrors_dir(self) -> Path:
        """Bare mirrors of origins, which sandboxes clone from (read-only)."""
        return self.home_dir / "mirrors"

    @property
    def run_dir(self) -> Path:
        """Sockets and other per-boot files."""
        return self.home_dir / "run"

    @property
    def bridge_socket(self) -> Path:
        """Unix socket the sandbox runtimes dial (bind-mounted into bwrap sandboxes).

        A socket path must fit in 107 bytes; a deep home gets a short path under the temp dir,
        derived from the home so that every process sharing the home finds the same socket.
        """
        path = self.run_dir / "bridge.sock"
        if len(str(path)) <= MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha256(str(self.home_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"openinspect-{digest}" / "bridge.sock"

    @property
    def bridge_url(self) -> str:
        """The bridge's address for the local backends: ``unix://`` + :attr:`bridge_socket`."""
        return unix_url(str(self.bridge_socket))

    def anthropic_key(self) -> SecretStr | None:
        return self.models.anthropic_api_key or self.anthropic_api_key

    def openai_key(self) -> SecretStr | None:
        return self.models.openai_api_key or self.openai_api_key
