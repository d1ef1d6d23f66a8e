"""The agent's resource budget: measure own RSS and CPU, pause the heaviest module when over.

An agent that eats CPU gets uninstalled (Wazuh #16250, #4335). Defaults: 60 MB RSS and 5 % of one
core averaged over a minute. Over budget, the module that spent the most time in the window is
paused for a while (doubling on repeat offences) and the overrun is reported in the heartbeat —
the agent never dies silently and never stops heartbeating.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psutil

from agent.collectors.base import Collector

log = logging.getLogger(__name__)

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    max_rss_bytes: int = 60 * 1000 * 1000
    max_cpu_percent: float = 5.0
    window_s: float = 60.0
    pause_s: float = 300.0
    max_pause_s: float = 3600.0


class ResourceBudget:
    """Call ``check()`` every few seconds with the modules; it samples and acts."""

    def __init__(self, limits: BudgetLimits, *, process: psutil.Process | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits, self.clock = limits, clock
        self.process = process or psutil.Process()
        # (time, process cpu seconds, {module: total_ms}) samples covering the last window
        self.samples: deque[tuple[float, float, dict[str, float]]] = deque()
        self.rss_bytes: int | None = None
        self.cpu_percent: float | None = None
        self.overruns = 0
        self._strikes: dict[str, int] = {}
        self._acted_at = float("-inf")

    def check(self, collectors: Iterable[Collector]) -> str | None:
        """Sample usage; if over budget, pause the heaviest pausable module. Returns its name."""
        modules = list(collectors)
        self._sample(modules)
        over = self._over()
        if not over:
            return None
        if self.clock() - self._acted_at < self.limits.window_s:
            return None  # the last pause needs a full window before the average can show its effect
        self._acted_at = self.clock()
        self.overruns += 1
        if self.rss_bytes and self.rss_bytes > self.limits.max_rss_bytes:
            gc.collect()  # give memory back first: a pause alone frees nothing
        victim = self._heaviest(modules)
        if victim is None:
            log.warning("over budget (%s) but no module can be paused", over)
            return None
        strikes = self._strikes[victim.name] = self._strikes.get(victim.name, 0) + 1
        seconds = min(self.limits.pause_s * 2 ** (strikes - 1), self.limits.max_pause_s)
        victim.pause(seconds, f"over budget: {over}; paused {seconds:.0f}s", now=self.clock())
        log.warning("over budget (%s): pausing %s for %.0fs", over, victim.name, seconds)
        return victim.name

    def _sample(self, modules: list[Collector]) -> None:
        now = self.clock()
        with self.process.oneshot():
            cpu = self.process.cpu_times()
            self.rss_bytes = self.process.memory_info().rss
        self.samples.append((now, cpu.user + cpu.system, {m.name: m.stats.total_ms for m in modules}))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.limits.window_s:
            self.samples.popleft()
        first_t, first_cpu, _ = self.samples[0]
        span = now - first_t
        self.cpu_percent = 100.0 * (cpu.user + cpu.system - first_cpu) / span if span > 0 else None

    def _over(self) -> str | None:
        full_window = self.clock() - self.samples[0][0] >= self.limits.window_s * 0.9
        if full_window and self.cpu_percent is not None and self.cpu_percent > self.limits.max_cpu_percent:
            return f"cpu {self.cpu_percent:.1f}% > {self.limits.max_cpu_percent:g}%"
        if self.rss_bytes is not None and self.rss_bytes > self.limits.max_rss_bytes:
            return f"rss {self.rss_bytes / MiB:.1f} MiB > {self.limits.max_rss_bytes / MiB:.1f} MiB"
        return None

    def _heaviest(self, modules: list[Collector]) -> Collector | None:
        """The running, pausable module that spent the most time collecting in the window."""
        before = self.samples[0][2]
        now = self.clock()
        candidates = [m for m in modules if m.pausable and m.paused_until <= now and not m.disabled_reason]
        if not candidates:
            return None
        return max(candidates, key=lambda m: m.stats.total_ms - before.get(m.name, 0.0))

    def to_dict(self, modules: Iterable[Collector]) -> dict[str, Any]:
        """What the heartbeat reports (collector.ingest.schema.BudgetHealth)."""
        now = self.clock()
        return {
            "max_rss_bytes": self.limits.max_rss_bytes, "max_cpu_percent": self.limits.max_cpu_percent,
            "rss_bytes": self.rss_bytes, "cpu_percent": round(self.cpu_percent, 3) if self.cpu_percent else None,
            "over": self._over() is not None if self.samples else False, "overruns": self.overruns,
            "paused": sorted(m.name for m in modules if m.paused_until > now),
        }
