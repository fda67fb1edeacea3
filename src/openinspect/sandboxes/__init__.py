"""Sandboxes: the provider seam (:mod:`.base`), its backends found through :mod:`.registry`
(:mod:`.bwrap`, :mod:`.process`), and the bridge their runtimes dial (:mod:`.bridge`)."""

from .base import (
    SandboxExit,
    SandboxHandle,
    SandboxProvider,
    SandboxSpec,
    SessionBinding,
    SnapshotCapable,
)
from .bridge import BridgeHub, BridgeSocket
from .connection import ExecResult, SandboxConnection
from .registry import available_providers, resolve_provider

__all__ = [
    "BridgeHub",
    "BridgeSocket",
    "ExecResult",
    "SandboxConnection",
    "SandboxExit",
    "SandboxHandle",
    "SandboxProvider",
    "SandboxSpec",
    "SessionBinding",
    "SnapshotCapable",
    "available_providers",
    "resolve_provider",
]
