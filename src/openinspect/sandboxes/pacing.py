"""What one box may cost the control plane: a message and byte rate, and a boot log budget.

Both exist because the box is not trusted (see :mod:`.inbound`): a process in it can speak the
bridge protocol, so without them it could keep a control-plane core busy parsing, or fill the
session's event log with boot lines.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from openinspect.runtime.protocol import MAX_FRAME_BYTES
from openinspect.settings import (
    DEFAULT_BOOT_LOG_MAX_BYTES,
    DEFAULT_BOOT_LOG_MAX_LINES,
    DEFAULT_BRIDGE_BYTES_PER_S,
    DEFAULT_BRIDGE_MESSAGES_PER_S,
    SandboxSettings,
)


@dataclass(frozen=True)
class BridgeLimits:
    """Per-box limits of the bridge (``Settings().sandbox.bridge_*``)."""

    messages_per_s: float = DEFAULT_BRIDGE_MESSAGES_PER_S
    """Sustained messages per second; a burst of one second's worth is allowed."""
    bytes_per_s: float = DEFAULT_BRIDGE_BYTES_PER_S
    """Sustained frame bytes per second; a burst of one frame or one second's worth."""
    boot_log_max_bytes: int = DEFAULT_BOOT_LOG_MAX_BYTES
    boot_log_max_lines: int = DEFAULT_BOOT_LOG_MAX_LINES

    @classmethod
    def from_settings(cls, sandbox: SandboxSettings) -> BridgeLimits:
        """The limits ``Settings().sandbox`` sets."""
        return cls(
            messages_per_s=sandbox.bridge_messages_per_s,
            bytes_per_s=sandbox.bridge_bytes_per_s,
            boot_log_max_bytes=sandbox.boot_log_max_bytes,
            boot_log_max_lines=sandbox.boot_log_max_lines,
        )


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``; ``take`` waits, ``try_take`` not.

    Waiting is how a reader applies backpressure: while the control plane does not read, the
    WebSocket's flow control stops the sender.
    """

    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def try_take(self, amount: float = 1.0) -> bool:
        """Take ``amount`` tokens if there are that many now."""
        self._refill()
        if self._tokens >= amount:
            self._tokens -= amount
            return True
        return False

    async def take(self, amount: float = 1.0) -> None:
        """Take ``amount`` tokens (at most ``burst``), waiting for the bucket to refill."""
        amount = min(amount, self._burst)
        self._refill()
        while self._tokens < amount:
            await asyncio.sleep((amount - self._tokens) / self._rate)
            self._refill()
        self._tokens -= amount


class Pacer:
    """The message and byte buckets of one box."""

    def __init__(self, limits: BridgeLimits) -> None:
        self.messages = TokenBucket(limits.messages_per_s, max(limits.messages_per_s, 1.0))
        self.bytes = TokenBucket(limits.bytes_per_s, max(limits.bytes_per_s, MAX_FRAME_BYTES))


class BootLogBudget:
    """Counts boot log lines and bytes of one box; ``admit`` says whether a line still fits.

    Once a line does not fit, every later one is refused too: the log ends at a known point
    rather than with holes, and ``exhausted`` tells the caller to store one marker.
    """

    def __init__(self, max_bytes: int, max_lines: int) -> None:
        self.max_bytes = max_bytes
        self.max_lines = max_lines
        self.lines = 0
        self.bytes = 0
        self.refused_lines = 0
        self.exhausted = False

    def admit(self, line: str) -> bool:
        """Count ``line`` in if it fits; False (for it and all later lines) once one did not."""
        size = len(line.encode("utf-8", errors="replace"))
        if self.exhausted or self.lines + 1 > self.max_lines or self.bytes + size > self.max_bytes:
            self.exhausted = True
            self.refused_lines += 1
            return False
        self.lines += 1
        self.bytes += size
        return True
