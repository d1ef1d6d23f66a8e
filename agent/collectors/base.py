"""Collector base: subclasses implement ``collect()``; ``run()`` catches, counts and times.

Modelled on Datadog's ``AgentCheck.run()``: one broken collector never stops the agent, and every
run's outcome is visible in the heartbeat. Collectors emit to a sink, so tests capture the output
without network or disk.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from agent.wire import Item

log = logging.getLogger(__name__)

MAX_ERROR_TEXT = 500


def current_platform() -> str:
    """``linux``, ``windows``, ``darwin`` ... as the collectors' ``platforms`` name them."""
    return "windows" if sys.platform.startswith("win") else sys.platform.rstrip("0123456789")


class Sink(Protocol):
    def emit(self, item: Item) -> None: ...


@dataclass
class ListSink:
    """A sink that keeps what it is given — for tests and one-shot commands."""

    items: list[Item] = field(default_factory=list)

    def emit(self, item: Item) -> None:
        self.items.append(item)


@dataclass
class CollectorStats:
    runs: int = 0
    errors: int = 0
    items: int = 0
    last_duration_ms: float | None = None
    total_ms: float = 0.0  # time spent collecting since start: how the budget finds the heaviest module
    last_error: str | None = None
    last_run_at: float | None = None
    status: str = "never_run"  # ok | error | unsupported | disabled | paused | never_run

    def to_dict(self) -> dict[str, object]:
        return {
            "runs": self.runs, "errors": self.errors, "items": self.items, "status": self.status,
            "last_duration_ms": self.last_duration_ms, "total_ms": round(self.total_ms, 3),
            "last_error": self.last_error,
        }


class Collector:
    """Base class. Set ``name`` and ``platforms``; implement ``collect()``."""

    name: str = "base"
    platforms: ClassVar[frozenset[str]] = frozenset({"linux"})
    # Fields each emitted item's data may carry, by item type (checked by tests/contract).
    fields: ClassVar[dict[str, tuple[str, ...]]] = {}
    # Whether the resource budget may pause this module when the agent is over budget.
    pausable: ClassVar[bool] = True

    def __init__(self) -> None:
        self.stats = CollectorStats()
        self.disabled_reason: str | None = None  # set when a module cannot run here (no privileges...)
        self.paused_until = 0.0  # time.monotonic() until which the budget holds this module
        self.pause_reason: str | None = None

    def pause(self, seconds: float, reason: str, *, now: float | None = None) -> None:
        """Skip runs for ``seconds`` (the resource budget's lever); the reason shows in the heartbeat."""
        self.paused_until = (time.monotonic() if now is None else now) + seconds
        self.pause_reason = reason

    def pending(self) -> bool:
        """Whether work is left that a scheduled run would carry on with (paced modules override)."""
        return False

    def supported(self) -> bool:
        return current_platform() in self.platforms

    def collect(self) -> Iterable[Item]:
        raise NotImplementedError

    def run(self, sink: Sink) -> CollectorStats:
        """Run once: emit every item, never raise. An error becomes an ``agent.error`` item."""
        stats = self.stats
        stats.runs += 1
        stats.last_run_at = time.time()
        if not self.supported():
            stats.status = "unsupported"
            stats.last_error = f"unsupported on this platform ({current_platform()})"
            return stats
        if self.disabled_reason:
            stats.status, stats.last_error = "disabled", self.disabled_reason
            return stats
        if time.monotonic() < self.paused_until:
            stats.status, stats.last_error = "paused", self.pause_reason
            return stats
        started = time.perf_counter()
        try:
            for item in self.collect():
                sink.emit(item)
                stats.items += 1
            stats.status = "ok"
            stats.last_error = None
        except Exception as exc:  # the one boundary per collector: log, count, continue
            stats.errors += 1
            stats.status = "error"
            stats.last_error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_TEXT]
            log.exception("collector %s failed", self.name)
            sink.emit(Item("agent.error", {"collector": self.name, "error": stats.last_error,
                                           "count": stats.errors}))
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            stats.last_duration_ms = round(elapsed_ms, 3)
            stats.total_ms += elapsed_ms
        return stats
