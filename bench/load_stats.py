"""What the simulated agents count: every request, its outcome, and every item that did not arrive."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Send ticks firing this late (p99) mean the client's event loop is behind: its latencies include its own delay.
LATE_TICK_WARN_MS = 250.0
TIMELINE_STEP_S = 5.0


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of an already sorted list; None when empty."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


@dataclass
class ClientStats:
    """One client process's counts; ``merge`` folds the processes together."""

    latencies_ms: list[float] = field(default_factory=list)  # requests started inside the window
    started_s: list[float] = field(default_factory=list)  # when each of them started, seconds after t=0
    requests: int = 0  # every request, window and drain
    window_requests: int = 0
    window_items: int = 0  # items acknowledged by answers that arrived inside the items window
    by_status: Counter[str] = field(default_factory=Counter)
    by_exception: Counter[str] = field(default_factory=Counter)
    accepted_by_type: Counter[str] = field(default_factory=Counter)  # items acknowledged (not duplicates)
    derived_expected: Counter[str] = field(default_factory=Counter)  # change events the server must derive
    batches: int = 0
    duplicates: int = 0  # acknowledged as already stored: a retry of a batch whose answer was lost
    backoffs: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)  # items the server refused for good, by reason
    undelivered: int = 0  # items still spooled when the run ended
    rejected_agents: int = 0  # agents whose credential the server refused (401/403)
    tick_lag_ms: list[float] = field(default_factory=list)
    extras: dict[int, list[int]] = field(default_factory=dict)  # agent index -> extra packages installed

    def _timed(self, latency_ms: float, at_s: float, in_window: bool) -> None:
        self.requests += 1
        if in_window:
            self.window_requests += 1
            self.latencies_ms.append(latency_ms)
            self.started_s.append(at_s)

    def record_answer(self, *, status: int, latency_ms: float, at_s: float, in_window: bool,
                      answered_in_window: bool, items: int) -> None:
        self._timed(latency_ms, at_s, in_window)
        self.by_status[str(status)] += 1
        if 200 <= status < 300 and answered_in_window:
            self.window_items += items

    def record_exception(self, *, name: str, latency_ms: float, at_s: float, in_window: bool) -> None:
        self._timed(latency_ms, at_s, in_window)
        self.by_exception[name] += 1

    def merge(self, other: ClientStats) -> None:
        for name in ("requests", "window_requests", "window_items", "batches", "duplicates", "backoffs",
                     "undelivered", "rejected_agents"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("by_status", "by_exception", "accepted_by_type", "derived_expected", "dead_lettered"):
            getattr(self, name).update(getattr(other, name))
        self.latencies_ms.extend(other.latencies_ms)
        self.started_s.extend(other.started_s)
        self.tick_lag_ms.extend(other.tick_lag_ms)
        self.extras.update(other.extras)

    @property
    def errors(self) -> int:
        """Every request that did not end in a 2xx answer."""
        bad = sum(n for code, n in self.by_status.items() if not code.startswith("2"))
        return bad + sum(self.by_exception.values())

    def timeline(self, *, window_s: float, step_s: float = TIMELINE_STEP_S) -> list[dict[str, Any]]:
        """Requests/s and latency per ``step_s`` of the window: shows stalls (checkpoints, jobs) and drift."""
        buckets: dict[int, list[float]] = {}
        for at, ms in zip(self.started_s, self.latencies_ms, strict=True):
            buckets.setdefault(min(int(at // step_s), int(window_s // step_s)), []).append(ms)
        out = []
        for k in sorted(buckets):
            lat = sorted(buckets[k])
            out.append({"from_s": k * step_s, "requests_per_s": round(len(lat) / step_s, 1),
                        "p50_ms": round(percentile(lat, 50), 1), "p99_ms": round(percentile(lat, 99), 1),
                        "max_ms": round(lat[-1], 1)})
        return out

    def summary(self, *, window_s: float, items_window_s: float) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        lag = sorted(self.tick_lag_ms)

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        return {
            "items_per_s": round(self.window_items / items_window_s, 1),
            "requests_per_s": round(self.window_requests / window_s, 1),
            "p50_ms": ms(percentile(lat, 50)), "p95_ms": ms(percentile(lat, 95)),
            "p99_ms": ms(percentile(lat, 99)), "max_ms": ms(lat[-1] if lat else None),
            "requests": self.requests, "errors": self.errors,
            "error_rate": round(self.errors / self.requests, 5) if self.requests else 0.0,
            "by_status": dict(sorted(self.by_status.items())), "by_exception": dict(sorted(self.by_exception.items())),
            "items_accepted": sum(self.accepted_by_type.values()), "accepted_by_type": dict(self.accepted_by_type),
            "derived_expected": dict(self.derived_expected), "batches": self.batches,
            "duplicates": self.duplicates, "backoffs": self.backoffs, "dead_lettered": dict(self.dead_lettered),
            "undelivered": self.undelivered, "rejected_agents": self.rejected_agents,
            "tick_lag_p50_ms": ms(percentile(lag, 50)), "tick_lag_p99_ms": ms(percentile(lag, 99)),
            "tick_lag_max_ms": ms(lag[-1] if lag else None),
            "timeline": self.timeline(window_s=window_s),
        }
