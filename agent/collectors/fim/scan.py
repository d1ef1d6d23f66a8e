"""Walk watched trees (or check single paths) against the baseline, emit changes, update the baseline.

Comparison is one directory at a time: only that directory's baseline rows are loaded, so memory is
bounded by the largest directory, not by the number of files watched.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Callable, Iterator

from agent.collectors.fim.baseline import Baseline, Record
from agent.collectors.fim.events import ITEM_TYPE, BurstLimiter, change_data
from agent.collectors.fim.paths import PathPolicy
from agent.collectors.fim.probe import Unreadable, action_of, diff, needs_hash, record_of, sha256_file
from agent.wire import Item

MAX_REPORTED = 20
GONE = (FileNotFoundError, NotADirectoryError)


class Scanner:
    """Compares the filesystem with the baseline; ``quiet`` scans (the first baseline) emit nothing."""

    def __init__(self, baseline: Baseline, policy: PathPolicy, limiter: BurstLimiter, counters: Counter[str],
                 out: Callable[[Item], None], *, max_files: int, max_hash_bytes: int) -> None:
        self.baseline, self.policy, self.limiter = baseline, policy, limiter
        self.counters, self.out = counters, out
        self.max_files, self.max_hash_bytes = max_files, max_hash_bytes
        self.missing: set[str] = set()
        self.unreadable: list[str] = []  # paths not reported yet (capped), drained by the collector
        self.cap_hit = False

    # --- whole trees, one directory at a time (driven by walk.Walk) -------------------------------

    def enter_root(self, root: str, *, scan: str, quiet: bool) -> list[str]:
        """Compare one watched root itself; returns ``[root]`` when it is a directory to walk."""
        old = self.baseline.get(root)
        try:
            st = os.lstat(root)
        except GONE:
            self.missing.add(root)
            if old is not None:
                self.vanish(root, old, scan=scan, quiet=quiet)
            return []
        self.missing.discard(root)
        new = self.observe(root, st, old)
        if new is None:
            return []
        self.apply(root, old, new, scan=scan, quiet=quiet)
        return [root] if new.kind == "dir" else []

    def scan_dir(self, directory: str, *, scan: str, quiet: bool) -> list[str]:
        """Compare one directory's entries with its baseline rows; returns its subdirectories."""
        known = self.baseline.children(directory)
        subdirs: list[str] = []
        try:
            entries = _entries(directory)
            if entries is None:  # gone or replaced since it was queued: judge the path itself
                return self.check(directory, scan=scan) if not quiet else []
            for entry in entries:
                path = entry.path
                if self.policy.excluded(path):
                    if known.pop(path, None) is not None:  # excluded since: forget it silently
                        self.forget(path)
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except GONE:
                    continue
                is_dir = stat.S_ISDIR(st.st_mode)
                if not self.policy.included(path, is_dir):
                    continue
                old = known.pop(path, None)
                new = self.observe(path, st, old)
                if new is not None:
                    self.apply(path, old, new, scan=scan, quiet=quiet)
                    if is_dir:
                        subdirs.append(path)
        except OSError as exc:  # unreadable directory: keep its rows rather than call them deleted
            self.note_unreadable(directory, exc)
            return []
        for path, old in known.items():
            self.vanish(path, old, scan=scan, quiet=quiet)
        return subdirs

    # --- single paths (realtime) -------------------------------------------------------------------

    def check(self, path: str, *, scan: str) -> list[str]:
        """Re-examine one path that realtime reported; returns a new directory to walk, if it is one.

        Files may land in a new directory before inotify watches it, so the caller walks it (paced).
        """
        if self.policy.root_of(path) is None or self.policy.excluded(path):
            return []
        old = self.baseline.get(path)
        try:
            st = os.lstat(path)
        except GONE:
            if path in self.policy.roots:
                self.missing.add(path)
            if old is not None:
                self.vanish(path, old, scan=scan, quiet=False)
            return []
        self.missing.discard(path)
        if not self.policy.included(path, stat.S_ISDIR(st.st_mode)):
            return []
        new = self.observe(path, st, old)
        if new is None:
            return []
        self.apply(path, old, new, scan=scan, quiet=False)
        return [path] if new.kind == "dir" and (old is None or old.kind != "dir") else []

    # --- shared steps ------------------------------------------------------------------------------

    def observe(self, path: str, st: os.stat_result, old: Record | None) -> Record | None:
        """The current record (hashed when needed), or None when the file cap refuses a new path."""
        if old is None and len(self.baseline) >= self.max_files:
            self.counters["file_cap"] += 1
            self.cap_hit = True
            return None
        new = record_of(path, st)
        if new.kind != "file":
            return new
        if not needs_hash(old, new):
            return new._replace(sha256=old.sha256 if old else None)
        if not self.policy.option(path, "hash", True):
            return new
        if new.size > self.max_hash_bytes:
            self.counters["not_hashed_too_large"] += 1
            return new
        try:
            return new._replace(sha256=sha256_file(path, st))
        except Unreadable as exc:
            self.note_unreadable(path, exc)
            return new

    def note_unreadable(self, path: str, exc: OSError) -> None:
        self.counters["unreadable"] += 1
        if len(self.unreadable) < MAX_REPORTED:
            self.unreadable.append(f"{path}: {exc.strerror or exc}")

    def apply(self, path: str, old: Record | None, new: Record, *, scan: str, quiet: bool) -> None:
        """Store ``new``; emit created / modified / attributes unless nothing changed or quiet."""
        if old is None:
            self.baseline.put(path, new, new=True)
            if not quiet:
                self.emit(path, "created", new, {}, scan)
            return
        changed = diff(old, new)
        if not changed:
            return
        if old.kind == "dir" and new.kind != "dir":
            self.vanish_below(path, scan=scan, quiet=quiet)
        self.baseline.put(path, new, new=False)
        if not quiet:
            self.emit(path, action_of(changed), new, changed, scan)

    def vanish(self, path: str, old: Record, *, scan: str, quiet: bool) -> None:
        if old.kind == "dir":
            self.vanish_below(path, scan=scan, quiet=quiet)
        self.baseline.delete(path)
        if not quiet:
            self.emit(path, "deleted", old, {}, scan)

    def vanish_below(self, path: str, *, scan: str, quiet: bool) -> None:
        if not quiet:
            for child, record in self.baseline.subtree(path):
                self.emit(child, "deleted", record, {}, scan)
        self.baseline.delete_subtree(path)

    def forget(self, path: str) -> None:
        self.baseline.delete_subtree(path)
        self.baseline.delete(path)

    def emit(self, path: str, action: str, record: Record, changed: dict, scan: str) -> None:
        web = self.policy.is_web(path)
        if self.limiter.admit(path, scan=scan, web_root=web):
            self.out(Item(ITEM_TYPE, change_data(path, action, record, changed, scan=scan, web_root=web)))


def _entries(directory: str) -> Iterator[os.DirEntry[str]] | None:
    """Entries of a directory, or None if it vanished (or stopped being one) since it was queued."""
    try:
        it = os.scandir(directory)
    except GONE:
        return None
    return _drain(it)


def _drain(it: os.ScandirIterator) -> Iterator[os.DirEntry[str]]:
    with it:
        yield from it
