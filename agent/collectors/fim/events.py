"""Build ``file.change`` items, and fold bursts (a package upgrade) into one ``summary`` item."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable

from agent.collectors.fim.baseline import Record
from agent.collectors.fim.probe import iso, mode_str, wire_value
from agent.wire import Item

ITEM_TYPE = "file.change"
FIELDS = ("path", "action", "kind", "changed_attributes", "size", "mode", "uid", "gid", "mtime", "inode",
          "sha256", "target", "web_root", "scan", "count", "sample_paths", "reason")
MAX_SAMPLES = 20
MAX_TRACKED_DIRS = 10_000


def change_data(path: str, action: str, record: Record, changed: dict[str, tuple[object, object]],
                *, scan: str, web_root: bool) -> dict[str, object]:
    """The data of one file.change item; ``record`` is the new state, or the last known for deletions."""
    return {
        "path": path, "action": action, "kind": record.kind,
        "changed_attributes": {k: {"old": wire_value(k, a), "new": wire_value(k, b)}
                               for k, (a, b) in changed.items()},
        "size": record.size, "mode": mode_str(record.mode), "uid": record.uid, "gid": record.gid,
        "mtime": iso(record.mtime), "inode": record.inode, "sha256": record.sha256,
        "target": record.target, "web_root": web_root, "scan": scan,
    }


class BurstLimiter:
    """Lets ``per_dir`` events per directory and ``total`` overall through per window; counts the rest.

    Suppressed events become one summary item, emitted when the window closes (``flush``).
    """

    def __init__(self, *, window_s: float, per_dir: int, total: int, clock: Callable[[], float],
                 counters: Counter[str]) -> None:
        self.window_s, self.per_dir, self.total = window_s, per_dir, total
        self.clock, self.counters = clock, counters
        self._reset(clock())

    def _reset(self, now: float) -> None:
        self.window_start = now
        self.seen = 0
        self.by_dir: Counter[str] = Counter()
        self.suppressed = 0
        self.samples: list[str] = []
        self.common: str | None = None
        self.web_root = False
        self.scan = "realtime"

    def admit(self, path: str, *, scan: str, web_root: bool) -> bool:
        """True when this event may go out on its own; False when it is folded into the summary."""
        parent = os.path.dirname(path)
        self.seen += 1
        if len(self.by_dir) < MAX_TRACKED_DIRS or parent in self.by_dir:
            self.by_dir[parent] += 1
            if self.by_dir[parent] <= self.per_dir and self.seen <= self.total:
                return True
        self.suppressed += 1
        self.counters["summarised_burst"] += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(path)
        self.common = parent if self.common is None else _common(self.common, parent)
        self.web_root = self.web_root or web_root
        self.scan = scan
        return False

    def flush(self, *, force: bool = False) -> Item | None:
        """The summary of a closed window (or now, when forced); the window restarts either way."""
        now = self.clock()
        if not force and now - self.window_start < self.window_s:
            return None
        item = None
        if self.suppressed:
            item = Item(ITEM_TYPE, {
                "path": self.common or "/", "action": "summary", "scan": self.scan, "web_root": self.web_root,
                "count": self.suppressed, "sample_paths": list(self.samples), "reason": "burst",
            })
        self._reset(now)
        return item


def _common(a: str, b: str) -> str:
    try:
        return os.path.commonpath([a, b])
    except ValueError:
        return "/"
