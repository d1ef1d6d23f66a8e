"""A comparison of whole trees against the baseline that stops after any directory and resumes later.

Rescans (at start, every ``rescan_s``, after a realtime storm) and the directories realtime discovers
go through a ``Walk``, so comparing 100,000 files is spread over many short runs instead of one CPU
spike. A directory is the unit of work: its entries are compared in one go, so the baseline rows
and the listing always come from the same moment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol


class DirectoryScanner(Protocol):
    def enter_root(self, root: str, *, scan: str, quiet: bool) -> list[str]: ...

    def scan_dir(self, directory: str, *, scan: str, quiet: bool) -> list[str]: ...


@dataclass
class Walk:
    """Depth-first over ``roots``; ``reason`` says why it runs (shown in counters and logs)."""

    roots: list[str]
    scan: str = "rescan"
    quiet: bool = False
    reason: str = "periodic"
    expected_dirs: int = 0  # the baseline's directory count when the walk began: progress estimate
    dirs_done: int = 0
    stack: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.roots = list(reversed(self.roots))  # popped from the end: first root first

    @property
    def done(self) -> bool:
        return not self.roots and not self.stack

    @property
    def percent(self) -> int:
        """Progress estimate, 0–99 while running (the tree may have grown since it was counted)."""
        if self.done:
            return 100
        return min(99, 100 * self.dirs_done // max(self.expected_dirs, self.dirs_done + 1))

    def add(self, directories: Iterable[str]) -> None:
        """More directories to compare (e.g. new trees realtime saw appear)."""
        self.stack.extend(directories)

    def step(self, scanner: DirectoryScanner, *, stop: Callable[[], bool] = lambda: False) -> bool:
        """Compare directories until ``stop()`` (asked after each one); True once the walk is done.

        At least one directory is compared per call, so a walk always moves forward.
        """
        while not self.done:
            if self.stack:
                directory = self.stack.pop()
                self.stack.extend(scanner.scan_dir(directory, scan=self.scan, quiet=self.quiet))
                self.dirs_done += 1
            else:
                self.stack.extend(scanner.enter_root(self.roots.pop(), scan=self.scan, quiet=self.quiet))
            if stop():
                break
        return self.done


class CpuSlice:
    """``over()`` once this thread has used ``ms`` of CPU since creation (None: never over).

    Thread CPU time, not wall time: waiting on disk or for a busy core costs the budget nothing, and
    the observer threads' work is bounded separately (they stop themselves in a storm).
    """

    def __init__(self, ms: float | None) -> None:
        self.limit = None if ms is None else ms / 1000.0
        self.started = time.thread_time()

    def over(self) -> bool:
        return self.limit is not None and time.thread_time() - self.started >= self.limit
