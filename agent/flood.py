"""Flood control: overall and per-module event rate limits in front of the spool.

Defaults follow Wazuh's agent buffer (500 events/s drained, 5,000 queued): a module may burst, but a
flood (a brute-force storm, a package upgrade touching every file) cannot fill the spool or the
uplink. Every event refused is counted by reason and shows in the heartbeat and ``status``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.collectors.base import Sink
from agent.wire import Item

FLUSH_EVERY_S = 1.0  # drop counters are written to the spool at most this often, not once per drop


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.last = float(burst), clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass(frozen=True, slots=True)
class FloodLimits:
    overall_rate: float = 500.0
    overall_burst: int = 5000
    module_rate: float = 200.0
    module_burst: int = 2000


class FloodGate:
    """Hands each event module a sink that passes events while its and the overall budget allow."""

    def __init__(self, sink: Sink, *, limits: FloodLimits, count_drop: Callable[[str, int], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sink, self.limits, self.count_drop, self.clock = sink, limits, count_drop, clock
        self.overall = TokenBucket(limits.overall_rate, limits.overall_burst, clock)
        self.modules: dict[str, TokenBucket] = {}
        self.pending: dict[str, int] = {}
        self._last_flush = clock()
        self._lock = threading.Lock()

    def for_module(self, name: str) -> Sink:
        """The sink one module emits into."""
        with self._lock:
            self.modules.setdefault(name, TokenBucket(self.limits.module_rate, self.limits.module_burst, self.clock))
        return _ModuleSink(self, name)

    def emit(self, module: str, item: Item) -> None:
        with self._lock:
            if not self.modules[module].take():
                reason = f"rate_limited:{module}"
            elif not self.overall.take():
                reason = "rate_limited:overall"
            else:
                reason = None
            if reason:
                self.pending[reason] = self.pending.get(reason, 0) + 1
            due = self.pending and self.clock() - self._last_flush >= FLUSH_EVERY_S
        if reason is None:
            self.sink.emit(item)
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the drop counts gathered since the last flush."""
        with self._lock:
            pending, self.pending = self.pending, {}
            self._last_flush = self.clock()
        for reason, count in pending.items():
            self.count_drop(reason, count)


@dataclass(frozen=True, slots=True)
class _ModuleSink:
    gate: FloodGate
    module: str

    def emit(self, item: Item) -> None:
        self.gate.emit(self.module, item)
