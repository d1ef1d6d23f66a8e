"""Time and memory spent on one hostile input, measured the way an operator would see them (wall clock, RSS)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


@dataclass(frozen=True, slots=True)
class Spent:
    result: Any  # what the call returned, or the exception it raised
    seconds: float
    peak_growth: int  # bytes the resident set grew above where it stood before the call, at its highest


def _status_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in {_STATUS}")


def can_measure() -> bool:
    """Linux lets a process reset its own peak RSS (``echo 5 > /proc/self/clear_refs``, Linux ≥ 4.0)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def spend(call: Callable[[], Any], *, expected: tuple[type[BaseException], ...] = ()) -> Spent:
    """Run ``call``; a raised exception of an ``expected`` type is returned, any other propagates.

    RSS, not tracemalloc: the batch validator allocates in Rust (pydantic-core), which tracemalloc misses.
    """
    _CLEAR_REFS.write_text("5")  # the high-water mark (VmHWM) starts again from the current RSS
    before = _status_kib("VmRSS")
    started = time.perf_counter()
    try:
        result: Any = call()
    except expected as exc:
        result = exc
    seconds = time.perf_counter() - started
    return Spent(result, seconds, max(0, _status_kib("VmHWM") - before) * 1024)
