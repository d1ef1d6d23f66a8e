"""``HeartbeatCollector``: the agent's own vital signs, so the server sees liveness, loss and health."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import psutil

from agent import __version__
from agent.collectors.base import Collector, current_platform
from agent.wire import HEARTBEAT_FIELDS, Item

HEARTBEAT_TYPE = "host.heartbeat"


class HeartbeatCollector(Collector):
    """Emits one ``host.heartbeat`` per run with exactly ``HEARTBEAT_FIELDS``."""

    name = "heartbeat"
    platforms = frozenset({"linux", "windows", "darwin"})
    fields: ClassVar[dict[str, tuple[str, ...]]] = {HEARTBEAT_TYPE: HEARTBEAT_FIELDS}
    pausable = False  # liveness is the one thing the budget must never switch off

    def __init__(self, spool_stats: Callable[[], dict[str, Any]],
                 collectors: Callable[[], Iterable[Collector]] | None = None, *,
                 started_at: float | None = None, budget: Callable[[], dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.spool_stats = spool_stats
        self.collectors = collectors or (lambda: [self])
        self.budget = budget
        self.started_at = time.monotonic() if started_at is None else started_at
        self._process = psutil.Process()
        # The first cpu_percent() call only sets the baseline; later calls cover the time between.
        self._process.cpu_percent(None)

    def collect(self) -> Iterator[Item]:
        """Yield the heartbeat item."""
        yield Item(HEARTBEAT_TYPE, self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        """The heartbeat payload."""
        spool = self.spool_stats()
        with self._process.oneshot():
            rss = self._process.memory_info().rss
            cpu = self._process.cpu_percent(None)
        return {
            "agent_version": __version__,
            "agent_uptime_s": round(time.monotonic() - self.started_at, 3),
            "host_uptime_s": _host_uptime(),
            "spool_items": int(spool.get("items", 0)),
            "spool_bytes": int(spool.get("bytes", 0)),
            "dropped": dict(spool.get("dropped", {})),
            "dead_letters": int(spool.get("dead_letters", 0)),
            "rss_bytes": int(rss),
            "cpu_percent": round(max(cpu, 0.0), 2),
            "collectors": {c.name: c.stats.to_dict() | {"counters": module_counters(c)} for c in self.collectors()},
            "platform": current_platform(),
            "budget": self.budget() if self.budget else None,
        }


def _host_uptime() -> float | None:
    try:
        return round(max(0.0, time.time() - psutil.boot_time()), 3)
    except (OSError, psutil.Error):  # some containers hide the boot time
        return None


MAX_COUNTERS = 32


def module_counters(module: Collector) -> dict[str, int]:
    """A module's own counters (``counters`` or ``losses``), flattened to ``a.b`` keys, ints only, capped."""
    raw = getattr(module, "counters", None) or getattr(module, "losses", None) or {}
    flat: dict[str, int] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 0 and len(flat) < MAX_COUNTERS:
            flat[prefix[:256]] = value

    walk("", dict(raw) if not isinstance(raw, dict) else raw)
    return flat
