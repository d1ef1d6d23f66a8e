"""Realtime FIM: a watchdog (inotify) observer whose thread only records paths in a bounded set.

All stat/hash/compare work happens in ``collect()`` on the scheduler's thread, so the observer can
never block on disk or SQLite. When the set is full the overflow is counted and the collector falls
back to a full rescan, so nothing is silently lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from collections import Counter
from collections.abc import Callable, Iterable

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

log = logging.getLogger(__name__)

# Opens and read-only closes are left out: every read of /etc would otherwise wake us.
EVENTS = [FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent, FileClosedEvent,
          FileAttribEvent, DirCreatedEvent, DirDeletedEvent, DirModifiedEvent, DirMovedEvent]


class PathQueue:
    """A bounded set of paths to re-examine; ``overflowed`` says some were not recorded."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.lock = threading.Lock()
        self.paths: set[str] = set()
        self.overflowed = False

    def add(self, path: str) -> None:
        with self.lock:
            if path in self.paths:
                return
            if len(self.paths) >= self.max_size:
                self.overflowed = True
                return
            self.paths.add(path)

    def drain(self, limit: int | None = None) -> tuple[list[str], bool]:
        """Up to ``limit`` paths in sorted order (parents first), and whether any were lost.

        What is over the limit stays queued for the next run: a package upgrade's thousands of
        changes are worked off at a steady pace instead of in one CPU spike.
        """
        with self.lock:
            ordered, overflowed = sorted(self.paths), self.overflowed
            taken = ordered if limit is None else ordered[:limit]
            self.paths = set(ordered[len(taken):])
            self.overflowed = False
        return taken, overflowed

    def __len__(self) -> int:
        return len(self.paths)


class _Enqueue(FileSystemEventHandler):
    def __init__(self, queue: PathQueue, wanted: Callable[[str], bool]) -> None:
        self.queue, self.wanted = queue, wanted

    def on_any_event(self, event: FileSystemEvent) -> None:
        for path in (event.src_path, getattr(event, "dest_path", "")):
            path = os.fsdecode(path)
            if path and self.wanted(path):
                self.queue.add(path)


class Watcher:
    """Keeps one recursive inotify watch per watched directory root, re-armed if a root is recreated."""

    def __init__(self, queue: PathQueue, wanted: Callable[[str], bool], counters: Counter[str]) -> None:
        self.handler = _Enqueue(queue, wanted)
        self.counters = counters
        self.observer: Observer | None = None  # type: ignore[valid-type]
        self.watches: dict[str, tuple[object, int]] = {}

    @property
    def running(self) -> bool:
        return self.observer is not None

    def start(self) -> None:
        if self.observer is None:
            self.observer = Observer()
            self.observer.daemon = True
            self.observer.start()

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None
            self.watches.clear()

    def sync(self, roots: Iterable[str]) -> None:
        """Watch each root that is a real directory now; drop watches on roots gone or replaced."""
        if self.observer is None:
            return
        for root in roots:
            try:
                st = os.lstat(root)
                inode = st.st_ino if stat.S_ISDIR(st.st_mode) else None
            except OSError:
                inode = None
            current = self.watches.get(root)
            if current is not None and current[1] == inode:
                continue
            if current is not None:
                self._unschedule(root)
            if inode is not None:
                self._schedule(root, inode)

    def _schedule(self, root: str, inode: int) -> None:
        try:
            watch = self.observer.schedule(self.handler, root, recursive=True, event_filter=EVENTS)
        except OSError as exc:  # e.g. the inotify watch limit: the periodic rescan still covers it
            self.counters["realtime_unavailable"] += 1
            log.warning("fim: cannot watch %s in realtime: %s", root, exc)
            return
        self.watches[root] = (watch, inode)
        # The root's own creation happened outside any watch: have collect() look at it now.
        self.handler.queue.add(root)

    def _unschedule(self, root: str) -> None:
        watch, _inode = self.watches.pop(root)
        # The emitter may already have torn itself down when the root vanished.
        with contextlib.suppress(KeyError, OSError):
            self.observer.unschedule(watch)
