"""Realtime FIM: a watchdog (inotify) observer whose thread only records paths in a bounded queue.

All stat/hash/compare work happens in ``collect()`` on the scheduler's thread, so the observer can
never block on disk or SQLite.

A package upgrade rewrites thousands of files in seconds, and every inotify event costs the
observer thread Python work (~40 µs with our filter) whether or not we keep the path. So an event
*storm* — the queue full, or the kernel's inotify queue overflowing — makes the watcher drop its
watches at once, from the observer thread: the kernel stops waking us, and the collector works off
what changed with a paced rescan instead, then re-arms realtime (see ``FimCollector``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import islice

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

log = logging.getLogger(__name__)

# Opens and read-only closes are left out: every read of /etc would otherwise wake us. Write-closes
# (IN_CLOSE_WRITE) too: every content change already raises IN_MODIFY (truncation included), and a
# write-close would add one more event per file written — a third of an upgrade's storm.
EVENTS = [FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent, FileAttribEvent,
          DirCreatedEvent, DirDeletedEvent, DirModifiedEvent, DirMovedEvent]

# watchdog re-arms its watches after a kernel queue overflow (IN_Q_OVERFLOW) but tells handlers
# nothing; its warning log record is the only signal, so a filter on that logger relays it.
WATCHDOG_INOTIFY_LOGGER = "watchdog.observers.inotify_c"
OVERFLOW_MESSAGE = "Inotify queue overflowed"


class PathQueue:
    """A bounded, insertion-ordered set of paths to re-examine; ``overflowed`` says some were lost."""

    def __init__(self, max_size: int, on_full: Callable[[], None] | None = None) -> None:
        self.max_size = max_size
        self.on_full = on_full
        self.lock = threading.Lock()
        self.paths: dict[str, None] = {}
        self.overflowed = False

    def add(self, path: str) -> None:
        with self.lock:
            if path in self.paths:
                return
            if len(self.paths) < self.max_size:
                self.paths[path] = None
                return
            first = not self.overflowed
            self.overflowed = True
        if first and self.on_full is not None:
            self.on_full()

    def take(self, limit: int) -> list[str]:
        """Up to ``limit`` paths, oldest first (a new directory comes before the files created in it)."""
        with self.lock:
            taken = list(islice(self.paths, limit))
            for path in taken:
                del self.paths[path]
        return taken

    def clear(self) -> bool:
        """Forget every path (a rescan covers them); returns whether any had been lost."""
        with self.lock:
            overflowed, self.overflowed = self.overflowed, False
            self.paths.clear()
        return overflowed

    def __len__(self) -> int:
        return len(self.paths)


class _Enqueue(FileSystemEventHandler):
    def __init__(self, queue: PathQueue, wanted: Callable[[str], bool], stormy: Callable[[], bool]) -> None:
        self.queue, self.wanted, self.stormy = queue, wanted, stormy

    def on_any_event(self, event: FileSystemEvent) -> None:
        if self.stormy():  # events already read before the watches went: nothing to keep
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            path = os.fsdecode(path)
            if path and self.wanted(path):
                self.queue.add(path)


class _OverflowRelay(logging.Filter):
    """Tells every live watcher that the kernel dropped events; never suppresses the record."""

    def __init__(self) -> None:
        super().__init__()
        self.watchers: weakref.WeakSet[Watcher] = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(OVERFLOW_MESSAGE):
            for watcher in list(self.watchers):
                # Runs on watchdog's inotify reader thread, which cannot tear down its own watches:
                # only flag the storm; the collector drops the watches on its next run.
                watcher.storm_detected("kernel inotify queue overflowed", drop_watches=False)
        return True


_relay = _OverflowRelay()
_watchdog_log = logging.getLogger(WATCHDOG_INOTIFY_LOGGER)
_watchdog_log.addFilter(_relay)
# The relay only sees records the logger lets through: keep its warnings on whatever the root says.
if _watchdog_log.getEffectiveLevel() > logging.WARNING:
    _watchdog_log.setLevel(logging.WARNING)


class Watcher:
    """One recursive inotify watch per watched directory root, re-armed if a root is recreated.

    ``storm`` holds the reason realtime stopped itself (None while healthy). Once set, the observer
    thread has already dropped every watch; the collector calls ``suspend()`` to settle the
    bookkeeping and ``resume()`` when its rescan is done.
    """

    def __init__(self, queue: PathQueue, wanted: Callable[[str], bool], counters: Counter[str]) -> None:
        self.queue = queue
        queue.on_full = lambda: self.storm_detected(f"more than {queue.max_size} changed paths waiting")
        self.handler = _Enqueue(queue, wanted, lambda: self.storm is not None)
        self.counters = counters
        self.observer: Observer | None = None  # type: ignore[valid-type]
        self.watches: dict[str, tuple[object, int]] = {}
        self.storm: str | None = None
        self.suspended = False

    @property
    def running(self) -> bool:
        return self.observer is not None and not self.suspended

    def start(self) -> None:
        if self.observer is None:
            self.observer = Observer()
            self.observer.daemon = True
            self.observer.start()
            _relay.watchers.add(self)

    def stop(self) -> None:
        if self.observer is not None:
            _relay.watchers.discard(self)
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None
            self.watches.clear()

    def storm_detected(self, reason: str, *, drop_watches: bool = True) -> None:
        """Called from the observer's threads: stop taking events, and drop every watch right now."""
        observer = self.observer
        if self.storm is not None or observer is None:
            return
        self.storm = reason
        if drop_watches:
            # On the dispatch thread (the queue filled up in our handler): watchdog allows
            # unscheduling from inside a handler, its observer lock is re-entrant.
            with contextlib.suppress(Exception):
                observer.unschedule_all()

    def suspend(self) -> str:
        """Collector side of a storm: no watches until ``resume()``; returns the storm's reason."""
        reason = self.storm or "suspended"
        if self.observer is not None:
            with contextlib.suppress(Exception):
                self.observer.unschedule_all()
        self.watches.clear()
        self.suspended = True
        return reason

    def resume(self) -> None:
        """Accept events again; the next ``sync()`` re-arms the watches."""
        self.storm = None
        self.suspended = False

    def sync(self, roots: Iterable[str]) -> None:
        """Watch each root that is a real directory now; drop watches on roots gone or replaced."""
        if self.observer is None or self.suspended or self.storm is not None:
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
                # Events still in flight for the old watch die with it: have collect() judge the root.
                self.queue.add(root)
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
        self.queue.add(root)

    def _unschedule(self, root: str) -> None:
        watch, _inode = self.watches.pop(root)
        # The emitter may already have torn itself down when the root vanished.
        with contextlib.suppress(KeyError, OSError):
            self.observer.unschedule(watch)
