"""The supervisor: connect the bridge, boot, then serve RPC until told to stop.

Environment (set by the sandbox provider):

=============================  ==============================================================
``OPENINSPECT_BRIDGE_URL``     Where the control plane's bridge is: ``unix:///…/bridge.sock``,
                               or ``wss://host/sandbox/bridge`` for a remote box (required;
                               see :mod:`.address`).
``OPENINSPECT_BRIDGE_CA_FILE``  PEM of the CAs a ``wss`` bridge is checked against (default:
                               the system's).
``OPENINSPECT_SANDBOX_ID``     This sandbox's id, sent as ``X-Sandbox-Id`` (required).
``OPENINSPECT_SANDBOX_TOKEN``  Bearer token of the bridge (required; hidden from commands).
``OPENINSPECT_BOOT_MODE``      ``build``, ``fresh``, ``repo_image`` or ``snapshot_restore``
                               (required; also passed to setup.sh and start.sh).
``OPENINSPECT_WORKSPACE``      Writable workspace; the repo lives in ``$WORKSPACE/repo``
                               (required).
``OPENINSPECT_CLONE_SOURCE``   Path or URL to clone from (required).
``OPENINSPECT_BASE_BRANCH``    Branch to clone (required); the box stays on it until ``bind``.
``OPENINSPECT_CLONE_OBJECTS``  A read-only objects directory the clone borrows (git alternates);
                               the clone source is then a list of refs (:mod:`.boot`).
``OPENINSPECT_SETUP_TIMEOUT_S``  Time limit of setup.sh (default 300).
``OPENINSPECT_START_TIMEOUT_S``  Time limit of start.sh (default 120).
``OPENINSPECT_HEARTBEAT_S``    Heartbeat interval (default 30).
``OPENINSPECT_MAX_PROCESSES``  RLIMIT_NPROC for the runtime and its commands (default: unset).
``OPENINSPECT_EGRESS``         ``1``: run the egress forwarder and give commands its proxy
                               variables (:mod:`.egressforward`); otherwise no egress.
``OPENINSPECT_HIBERNATE_S``    Seconds with nothing to do after which a runtime on a unix://
                               bridge hibernates (:mod:`.hibernate`; default 0: never).
=============================  ==============================================================

Nothing here names a session: the session's work branch and git proxy path come over the bridge
with ``bind`` (:mod:`.binding`), so a box can boot before anyone knows which session it serves.

Order: connect and send ``hello`` first (the control plane learns the sandbox is alive), then
boot (:mod:`.boot`). RPC requests are served from the first connection on, during boot and after
it, whatever its outcome. ``shutdown`` from the control plane or SIGTERM/SIGINT kill every running
command and exit 0; a permanent refusal by the control plane exits with :data:`EXIT_REJECTED`.

Commands and scripts inherit this environment minus the bridge token and address, and minus the
runtime's own library directory in ``PYTHONPATH``, plus ``GIT_TERMINAL_PROMPT=0`` (git must
never wait for a password nobody will type). Core dumps are disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import RUNTIME_VERSION
from .address import BadBridgeAddress, BridgeAddress
from .binding import Binding
from .boot import Boot, BootPlan
from .bridge import BridgeClient, BridgeRejected, Outbox
from .egressforward import EgressForwarder
from .executor import Executor
from .hibernate import CHECK_INTERVAL_S, RESUME_PREFIX, ResumeState, hibernate
from .protocol import BOOT_MODES, BootMode, HelloMessage
from .rpc import RpcServer

logger = logging.getLogger("openinspect.runtime")

DEFAULT_SETUP_TIMEOUT_S = 300.0
DEFAULT_START_TIMEOUT_S = 120.0
DEFAULT_HEARTBEAT_S = 30.0
EXIT_REJECTED = 3
EXIT_BAD_CONFIG = 2
_PREFIX = "OPENINSPECT_"
_REQUIRED = (
    "BRIDGE_URL",
    "SANDBOX_ID",
    "SANDBOX_TOKEN",
    "BOOT_MODE",
    "WORKSPACE",
    "CLONE_SOURCE",
    "BASE_BRANCH",
)
_HIDDEN_FROM_COMMANDS = (
    "OPENINSPECT_SANDBOX_TOKEN",
    "OPENINSPECT_BRIDGE_URL",
    "OPENINSPECT_BRIDGE_CA_FILE",
    "OPENINSPECT_EGRESS",
    "OPENINSPECT_HIBERNATE_S",
)


class ConfigMissing(Exception):
    """The environment lacks or garbles a required variable."""


@dataclass(frozen=True)
class RuntimeConfig:
    """The runtime's settings, read from ``OPENINSPECT_*`` environment variables."""

    bridge: BridgeAddress
    sandbox_id: str
    token: str
    plan: BootPlan
    heartbeat_s: float
    max_processes: int | None
    bridge_ca_file: str | None = None
    egress: bool = False
    hibernate_s: float = 0.0

    def bridge_tls(self) -> ssl.SSLContext | None:
        """The TLS context of a ``wss`` bridge; raises ``OSError``/``ssl.SSLError``."""
        return self.bridge.tls(self.bridge_ca_file)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RuntimeConfig:
        """Read the config; raises :class:`ConfigMissing` naming every bad variable."""
        problems = [
            f"{_PREFIX}{name} is not set" for name in _REQUIRED if not env.get(_PREFIX + name)
        ]
        mode = env.get(_PREFIX + "BOOT_MODE", "")
        if mode and mode not in BOOT_MODES:
            problems.append(
                f"{_PREFIX}BOOT_MODE must be one of {', '.join(BOOT_MODES)}, got {mode!r}"
            )
        numbers: dict[str, float] = {}
        for name, default in (
            ("SETUP_TIMEOUT_S", DEFAULT_SETUP_TIMEOUT_S),
            ("START_TIMEOUT_S", DEFAULT_START_TIMEOUT_S),
            ("HEARTBEAT_S", DEFAULT_HEARTBEAT_S),
            ("MAX_PROCESSES", 0.0),
            ("HIBERNATE_S", 0.0),
        ):
            raw = env.get(_PREFIX + name)
            try:
                numbers[name] = float(raw) if raw else default
            except ValueError:
                problems.append(f"{_PREFIX}{name} must be a number, got {raw!r}")
        bridge: BridgeAddress | None = None
        if env.get(_PREFIX + "BRIDGE_URL"):
            try:
                bridge = BridgeAddress.parse(env[_PREFIX + "BRIDGE_URL"])
            except BadBridgeAddress as exc:
                problems.append(f"{_PREFIX}BRIDGE_URL: {exc}")
        ca_file = env.get(_PREFIX + "BRIDGE_CA_FILE") or None
        if ca_file is not None and not os.path.isfile(ca_file):
            problems.append(f"{_PREFIX}BRIDGE_CA_FILE is not a file: {ca_file!r}")
        if problems:
            raise ConfigMissing(
                "cannot start: "
                + "; ".join(problems)
                + " (the sandbox provider sets these; see openinspect.runtime.supervisor)"
            )
        boot_mode: BootMode = next(m for m in BOOT_MODES if m == mode)
        assert bridge is not None  # else a problem above
        return cls(
            bridge=bridge,
            bridge_ca_file=ca_file,
            sandbox_id=env[_PREFIX + "SANDBOX_ID"],
            token=env[_PREFIX + "SANDBOX_TOKEN"],
            plan=BootPlan(
                workspace=Path(env[_PREFIX + "WORKSPACE"]),
                clone_source=env[_PREFIX + "CLONE_SOURCE"],
                base_branch=env[_PREFIX + "BASE_BRANCH"],
                boot_mode=boot_mode,
                setup_timeout_s=numbers["SETUP_TIMEOUT_S"],
                start_timeout_s=numbers["START_TIMEOUT_S"],
                clone_objects=env.get(_PREFIX + "CLONE_OBJECTS") or None,
            ),
            heartbeat_s=numbers["HEARTBEAT_S"],
            max_processes=int(numbers["MAX_PROCESSES"]) or None,
            egress=env.get(_PREFIX + "EGRESS") == "1",
            hibernate_s=max(0.0, numbers["HIBERNATE_S"]),
        )


def command_environment(env: Mapping[str, str]) -> dict[str, str]:
    """What commands and scripts inherit: ``env`` without the runtime's private entries."""
    child = {
        k: v
        for k, v in env.items()
        if k not in _HIDDEN_FROM_COMMANDS and not k.startswith(RESUME_PREFIX)
    }
    # The runtime's own lib (websockets, this package) must not shadow the repo's packages.
    own_lib = os.path.abspath(Path(__file__).parent.parent.parent)
    kept = [
        p
        for p in child.get("PYTHONPATH", "").split(os.pathsep)
        if p and os.path.abspath(p) != own_lib
    ]
    if kept:
        child["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        child.pop("PYTHONPATH", None)
    return child


def apply_limits(max_processes: int | None) -> None:
    """Disable core dumps and cap processes; inherited by every command (best effort: the
    kernel does not apply RLIMIT_NPROC to a process whose real uid is root outside the box, and
    counts every process of the uid host-wide, so a provider whose cgroup caps the box's
    processes passes no ``max_processes``)."""
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if max_processes:
        _soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        limit = max_processes if hard == resource.RLIM_INFINITY else min(max_processes, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
        except (ValueError, OSError) as exc:
            logger.warning("cannot set RLIMIT_NPROC to %d: %s", limit, exc)


async def serve(
    config: RuntimeConfig, env: Mapping[str, str], *, stop: asyncio.Event | None = None
) -> int:
    """Run the runtime until shutdown; returns the process exit status.

    Without ``stop`` the runtime owns its process: it sets its limits and stops on SIGTERM or
    SIGINT. With ``stop`` it is a guest in someone else's process (the in-process test provider,
    :mod:`openinspect.testing.inprocess`): it touches neither limits nor signal handlers, and
    setting ``stop`` is its SIGTERM.
    """
    if stop is None:
        apply_limits(config.max_processes)
    try:
        tls = config.bridge_tls()
    except (OSError, ssl.SSLError) as exc:
        logger.error("cannot read the bridge's CA file: %s", exc)
        return EXIT_BAD_CONFIG
    # A guest in someone else's process never hibernates, so it never resumes either.
    resume = ResumeState.from_env(env) if stop is None else None
    fds = resume.listener_fds if resume is not None else {}
    child_env = {**command_environment(env), "GIT_TERMINAL_PROMPT": "0"}
    egress = await _start_egress(config, tls, fds.get("egress"))
    if egress is not None:
        child_env.update(egress.environment())
    outbox = Outbox()
    binding = Binding(
        config.plan.repo_dir,
        child_env,
        bridge=config.bridge,
        token=config.token,
        tls=tls,
        resumed=resume.bound if resume is not None else None,
        forwarder_fd=fds.get("git"),
    )
    rpc = RpcServer(Executor(config.plan.repo_dir, child_env, binding=binding), outbox)
    try:
        boot = Boot(config.plan, outbox, child_env)
        if resume is not None:
            boot.phase = resume.phase
            try:
                await binding.resume()
            except OSError as exc:
                logger.warning("cannot listen on the git forwarder's socket again: %s", exc)
        sleeper = _Hibernation(config, env, outbox, rpc, boot, binding, egress)
        return await _run(config, outbox, rpc, boot, tls, stop, sleeper, resumed=resume is not None)
    finally:
        await binding.close()
        if egress is not None:
            await egress.close()


async def _start_egress(
    config: RuntimeConfig, tls: ssl.SSLContext | None, inherited_fd: int | None = None
) -> EgressForwarder | None:
    """The egress forwarder, listening (on the socket a hibernated runtime handed over, if
    any), when the box has egress; a box whose forwarder cannot bind runs without (its
    commands see no proxy, so no network)."""
    if not config.egress:
        return None
    forwarder = EgressForwarder(config.bridge, config.token, tls=tls, inherited_fd=inherited_fd)
    try:
        await forwarder.start()
    except OSError as exc:
        logger.warning("no egress: cannot start the egress forwarder: %s", exc)
        return None
    return forwarder


class _Hibernation:
    """Decides when this runtime has had nothing to do for ``hibernate_s`` and hibernates it
    (:mod:`.hibernate`)."""

    def __init__(
        self,
        config: RuntimeConfig,
        env: Mapping[str, str],
        outbox: Outbox,
        rpc: RpcServer,
        boot: Boot,
        binding: Binding,
        egress: EgressForwarder | None,
    ) -> None:
        self._config = config
        self._env = env
        self._outbox = outbox
        self._rpc = rpc
        self._boot = boot
        self._binding = binding
        self._egress = egress

    def hello(self) -> HelloMessage:
        return {
            "type": "hello",
            "runtime_version": RUNTIME_VERSION,
            "boot_mode": self._config.plan.boot_mode,
            "sandbox_id": self._config.sandbox_id,
            "phase": self._boot.phase,
        }

    @property
    def enabled(self) -> bool:
        # The idle runtime speaks WebSocket over a Unix socket only (no TLS).
        return self._config.hibernate_s > 0 and self._config.bridge.scheme == "unix"

    def _quiet(self, connected: bool) -> bool:
        forwarders = [self._binding.forwarder, self._egress]
        return (
            connected
            and self._boot.phase in ("ready", "failed")
            and not self._rpc.busy
            and self._outbox.idle
            and not any(f is not None and f.busy for f in forwarders)
            and time.monotonic() - self._rpc.last_activity >= self._config.hibernate_s
        )

    async def watch(self, client: BridgeClient) -> None:
        """Hibernate once quiet for long enough; returns only if hibernating failed."""
        while True:
            await asyncio.sleep(CHECK_INTERVAL_S)
            if not self._quiet(client.connected.is_set()):
                continue
            fds = {
                name: fd
                for name, forwarder in (("git", self._binding.forwarder), ("egress", self._egress))
                if forwarder is not None and (fd := forwarder.fileno) is not None
            }
            hibernate(self._env, self.hello(), fds, self._binding.state)
            return


async def _run(
    config: RuntimeConfig,
    outbox: Outbox,
    rpc: RpcServer,
    boot: Boot,
    tls: ssl.SSLContext | None,
    stop: asyncio.Event | None,
    sleeper: _Hibernation,
    *,
    resumed: bool = False,
) -> int:
    """Connect, boot (unless resumed), serve RPC until shutdown; returns the exit status."""
    hello = sleeper.hello

    client = BridgeClient(
        config.bridge,
        config.sandbox_id,
        config.token,
        outbox,
        hello=hello,
        on_message=rpc.handle,
        tls=tls,
    )
    stop_is_ours = stop is None
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

    async def boot_when_connected() -> None:
        await client.ever_connected.wait()
        if not resumed:
            await boot.run()

    client_task = asyncio.create_task(client.run())
    stop_task = asyncio.create_task(stop.wait())
    background = [
        asyncio.create_task(boot_when_connected()),
        asyncio.create_task(client.heartbeat(config.heartbeat_s)),
    ]
    if sleeper.enabled and stop_is_ours:
        background.append(asyncio.create_task(sleeper.watch(client)))
    await asyncio.wait({client_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    for task in (*background, stop_task):
        task.cancel()
    # Kill the commands first: they must not outlive the runtime, even on a rejected bridge.
    await rpc.close()
    await asyncio.gather(*background, stop_task, return_exceptions=True)
    if not client_task.done():
        client_task.cancel()
    await asyncio.gather(client_task, return_exceptions=True)
    if not client_task.cancelled() and isinstance(client_task.exception(), BridgeRejected):
        logger.error("exiting: %s", client_task.exception())
        return EXIT_REJECTED
    logger.info("shut down")
    return 0
