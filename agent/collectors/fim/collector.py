"""``FimCollector``: file integrity monitoring — SQLite baseline, realtime inotify, periodic rescan.

The first ``collect()`` builds the baseline silently. Every later ``collect()`` (the scheduler calls
it every second or two) drains the paths the observer thread queued and compares them with the
baseline; a full rescan runs at process start (finding what changed while the agent was down) and
every ``rescan_every_s``. Problems that are not failures of the collector (unreadable files, the
file cap) go out as ``agent.error`` items and counters instead of failing the run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import ClassVar

from agent.collectors.base import Collector
from agent.collectors.fim.baseline import Baseline
from agent.collectors.fim.events import FIELDS, ITEM_TYPE, BurstLimiter
from agent.collectors.fim.paths import DEFAULT_EXCLUDES, PathPolicy, under
from agent.collectors.fim.realtime import PathQueue, Watcher
from agent.collectors.fim.scan import Scanner
from agent.wire import Item

DB_FILE = "fim.db"


class FimCollector(Collector):
    """Emits ``file.change`` items for watched paths. Call ``start()``/``stop()`` for realtime."""

    name = "fim"
    platforms = frozenset({"linux"})
    fields: ClassVar[dict[str, tuple[str, ...]]] = {
        ITEM_TYPE: FIELDS, "agent.error": ("collector", "error", "count")}

    def __init__(self, state_dir: Path | str, *, paths: Iterable[str] | None = None,
                 web_roots: Iterable[str] | None = None, include: Iterable[str] = (),
                 exclude: Iterable[str] = DEFAULT_EXCLUDES,
                 path_options: Mapping[str, Mapping[str, object]] | None = None,
                 rescan_every_s: float = 12 * 3600, max_file_bytes: int = 50 << 20,
                 max_files: int = 100_000, queue_size: int = 10_000, max_checks_per_run: int = 250,
                 burst_window_s: float = 60.0,
                 burst_per_dir: int = 20, burst_total: int = 100,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.policy = PathPolicy.build(paths, web_roots, include, exclude, path_options)
        self.counters: Counter[str] = Counter()
        self.clock = clock
        self.max_checks_per_run = max_checks_per_run
        self.rescan_every_s = rescan_every_s
        self.baseline = Baseline(Path(state_dir) / DB_FILE)
        self.limiter = BurstLimiter(window_s=burst_window_s, per_dir=burst_per_dir, total=burst_total,
                                    clock=clock, counters=self.counters)
        self._out: list[Item] = []
        self.scanner = Scanner(self.baseline, self.policy, self.limiter, self.counters, self._out.append,
                               max_files=max_files, max_hash_bytes=max_file_bytes)
        self.queue = PathQueue(queue_size)
        self.watcher = Watcher(self.queue, self._wanted, self.counters)
        self.last_rescan: float | None = None
        self._cap_reported = False

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the inotify observer (a daemon thread); safe to call twice."""
        self.watcher.start()
        self.watcher.sync(self._realtime_roots())

    def stop(self) -> None:
        """Stop the observer and flush the baseline; ``collect()`` still works (rescans only)."""
        self.watcher.stop()
        self.baseline.commit()

    def close(self) -> None:
        self.stop()
        self.baseline.close()

    # --- collection --------------------------------------------------------------------------------

    def collect(self) -> Iterator[Item]:
        """Baseline, rescan when due, then drain realtime paths; yields the changes found."""
        now = self.clock()
        self.watcher.sync(self._realtime_roots())
        paths, overflowed = self.queue.drain(self.max_checks_per_run)
        if overflowed:
            self.counters["queue_overflow"] += 1
        if self.baseline.get_meta("initialized") is None:
            self._full_scan(quiet=True)
            self.baseline.set_meta("initialized", "1")
            self.last_rescan = now
        elif overflowed or self.last_rescan is None or now - self.last_rescan >= self.rescan_every_s:
            # Startup (changes made while we were down), the periodic rescan, or lost realtime events.
            self._full_scan(quiet=False)
            self.last_rescan = now
        for path in paths:
            self.scanner.check(path, scan="realtime")
        self.baseline.commit()
        summary = self.limiter.flush()
        if summary is not None:
            self._out.append(summary)
        self._update_gauges()
        items, self._out[:] = list(self._out), []
        yield from items
        yield from self._problems()

    def _full_scan(self, *, quiet: bool) -> None:
        for root in self._top_roots():
            self.scanner.walk(root, scan="rescan", quiet=quiet)
        self.baseline.commit()
        summary = self.limiter.flush(force=True)  # a rescan's burst is summarised in the same run
        if summary is not None:
            self._out.append(summary)

    def _problems(self) -> Iterator[Item]:
        """``agent.error`` items for the file cap (once) and files that could not be read."""
        if self.scanner.cap_hit and not self._cap_reported:
            self._cap_reported = True
            yield Item("agent.error", {"collector": self.name, "count": 1, "error": (
                f"file cap reached: {self.scanner.max_files} files watched; new paths are not baselined")})
        if self.scanner.unreadable:
            text = "; ".join(self.scanner.unreadable)[:4000]
            self.scanner.unreadable.clear()
            yield Item("agent.error", {"collector": self.name, "count": self.counters["unreadable"],
                                       "error": f"unreadable: {text}"})

    # --- helpers -----------------------------------------------------------------------------------

    def _top_roots(self) -> list[str]:
        roots = self.policy.roots
        return [r for r in roots if not any(o != r and under(r, o) for o in roots)]

    def _realtime_roots(self) -> list[str]:
        return [r for r in self._top_roots() if self.policy.option(r, "realtime", True)]

    def _wanted(self, path: str) -> bool:
        """Observer-thread filter: watched, not excluded, realtime not switched off for it."""
        return (self.policy.root_of(path) is not None and not self.policy.excluded(path)
                and bool(self.policy.option(path, "realtime", True)))

    def _update_gauges(self) -> None:
        self.counters["files"] = len(self.baseline)
        self.counters["missing_paths"] = len(self.scanner.missing)
        self.counters["queued"] = len(self.queue)

    def status(self) -> dict[str, object]:
        """Counters plus the watched roots that do not exist (yet)."""
        return {"counters": dict(self.counters), "missing": sorted(self.scanner.missing),
                "realtime": self.watcher.running, "watched_roots": sorted(self.watcher.watches)}
