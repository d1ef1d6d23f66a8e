"""``FimCollector``: file integrity monitoring — SQLite baseline, realtime inotify, paced rescans.

Every ``collect()`` (the scheduler calls it every second) works for at most ``slice_ms`` of CPU:
first the paths the observer thread queued, then the new directories they revealed, then the
rescan in progress. The first rescan builds the baseline silently, with realtime held back; later
ones start at process start (finding what changed while the agent was down), every
``rescan_every_s``, and after a realtime storm.

Storms (a package upgrade rewriting 50,000 files): the watcher drops its inotify watches the moment
its queue fills or the kernel's overflows, so the flood stops costing CPU; a paced rescan then
finds every change. Whenever a pass ran without realtime (a storm's, or the first baseline), its
end re-arms realtime and starts one more paced pass, which covers what changed between a
directory's visit and the re-arming. Problems that are not failures of the collector
(unreadable files, the file cap) go out as ``agent.error`` items and counters.
"""

from __future__ import annotations

import logging
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
from agent.collectors.fim.walk import CpuSlice, Walk
from agent.wire import Item

DB_FILE = "fim.db"

log = logging.getLogger(__name__)


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
                 max_files: int = 100_000, queue_size: int = 5_000, slice_ms: float | None = 20.0,
                 burst_window_s: float = 60.0,
                 burst_per_dir: int = 20, burst_total: int = 100,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.policy = PathPolicy.build(paths, web_roots, include, exclude, path_options)
        self.counters: Counter[str] = Counter()
        self.clock = clock
        self.slice_ms = slice_ms
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
        self.walk: Walk | None = None  # the rescan (or first baseline) in progress
        self.initialized = self.baseline.get_meta("initialized") is not None
        if not self.initialized:
            self.watcher.suspend()  # realtime waits for the baseline, which must not report anything
        self.discovered = Walk([], scan="realtime", reason="new directories")  # trees realtime saw appear
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
        """Baseline once, then realtime paths and rescans within this run's CPU slice."""
        now = self.clock()
        work = CpuSlice(self.slice_ms)
        self.watcher.sync(self._realtime_roots())
        if self.watcher.storm is not None and not self.watcher.suspended:
            self._suspend_realtime()
        if self.walk is None and not self.initialized:
            self._start_rescan("baseline", quiet=True)
        elif self.walk is None and (self.last_rescan is None or now - self.last_rescan >= self.rescan_every_s):
            # At startup (changes made while we were down) and periodically (what realtime missed).
            self._start_rescan("startup" if self.last_rescan is None else "periodic")
        self._work_off_realtime(work)
        # The rescan also gets at least one directory per run, even when realtime used the slice.
        if self.walk is not None and self.walk.step(self.scanner, stop=work.over):
            self._rescan_finished()
        self.baseline.commit()
        summary = self.limiter.flush()
        if summary is not None:
            self._out.append(summary)
        self._update_gauges()
        items, self._out[:] = list(self._out), []
        yield from items
        yield from self._problems()

    def _work_off_realtime(self, work: CpuSlice) -> None:
        """Queued paths oldest first, then the new trees they revealed, until the slice is used.

        At least one path (or directory) per run, so a busy host slows FIM down but never stalls it.
        """
        while paths := self.queue.take(16):  # small batches: what the slice leaves stays queued
            for index, path in enumerate(paths):
                self.discovered.add(self.scanner.check(path, scan="realtime"))
                if work.over():
                    for rest in paths[index + 1:]:
                        self.queue.add(rest)
                    return
        if not self.discovered.done:
            self.discovered.step(self.scanner, stop=work.over)

    def _start_rescan(self, reason: str, *, quiet: bool = False) -> None:
        self.walk = Walk(self._top_roots(), quiet=quiet, reason=reason, expected_dirs=self.baseline.count_dirs())
        self.last_rescan = self.clock()

    def _suspend_realtime(self) -> None:
        """The watcher stopped itself in a storm: everything queued is covered by a rescan instead."""
        reason = self.watcher.suspend()
        self.counters["realtime_suspended"] += 1
        if self.queue.clear():
            self.counters["queue_overflow"] += 1
        self.discovered = Walk([], scan="realtime", reason="new directories")
        log.warning("fim: realtime suspended (%s); working off the changes with a paced rescan", reason)
        self._start_rescan("storm")  # replaces any rescan in progress: its visited part is stale now

    def _rescan_finished(self) -> None:
        walk, self.walk = self.walk, None
        self.counters["rescans"] += 1
        summary = self.limiter.flush(force=True)  # a rescan's burst is summarised when it ends
        if summary is not None:
            self._out.append(summary)
        if walk is not None and walk.reason == "baseline":
            self.initialized = True
            self.baseline.set_meta("initialized", "1")
            log.info("fim: baseline built: %d paths", len(self.baseline))
        if self.watcher.suspended:
            # Re-arm now; one more pass covers what changed after this pass had moved on.
            self.watcher.resume()
            self.watcher.sync(self._realtime_roots())
            self._start_rescan(f"after {walk.reason if walk is not None else 'suspension'}")
            log.info("fim: realtime re-armed; checking once more for changes made during the pass")

    def pending(self) -> bool:
        """A rescan, queued paths or discovered trees still to compare (not while paused or failing)."""
        return self.stats.status == "ok" and (self.walk is not None or len(self.queue) > 0
                                              or not self.discovered.done)

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
        self.counters["realtime_active"] = int(self.watcher.running)
        self.counters["rescan_percent"] = self.walk.percent if self.walk is not None else 0

    def status(self) -> dict[str, object]:
        """Counters plus the watched roots that do not exist (yet)."""
        return {"counters": dict(self.counters), "missing": sorted(self.scanner.missing),
                "realtime": self.watcher.running, "storm": self.watcher.storm,
                "rescan": None if self.walk is None else {"reason": self.walk.reason, "percent": self.walk.percent},
                "watched_roots": sorted(self.watcher.watches)}
