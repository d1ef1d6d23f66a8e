"""Time and memory spent on one hostile input: CPU time of the calling thread, and resident set size.

The time bound is against inputs that make the decoders blow up, which is slow on every try. Noise
only ever adds time, so the measure keeps it out three ways:
- CPU time, not the wall clock: CI runs two test workers on two cores, and the clock also counts the
  other processes' turns (a 1 MB batch that needs 25 ms of CPU once took 1.26 s by the clock);
- what was live before the call is frozen out of the garbage collector (``gc.freeze``) during it:
  late in a run a worker's heap holds millions of objects, and a full collection that happens to
  fall inside the call would be the heap's cost, not the input's;
- over the bound, the call is tried again (at most ``TRIES`` in all) and the fastest try counts: on a
  shared CI host that batch once came out at 1.07 s even of CPU time (a hypervisor's stolen time can
  be charged to the thread, and nothing then kept a full collection out of the call).
Memory is taken from the first try only: the resident set does not shrink, so a later try would hide
growth.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
TRIES = 3


@dataclass(frozen=True, slots=True)
class Spent:
    result: Any  # what the call returned, or the exception it raised
    seconds: float  # CPU time of the calling thread
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


def spend(call: Callable[[], Any], *, expected: tuple[type[BaseException], ...] = (),
          seconds_bound: float | None = None) -> Spent:
    """Run ``call``; a raised exception of an ``expected`` type is returned, any other propagates.

    With ``seconds_bound``, a try that reaches it is followed by another, up to ``TRIES``; the fastest
    counts. RSS, not tracemalloc: the batch validator allocates in Rust (pydantic-core), which
    tracemalloc misses.
    """
    first = _once(call, expected)
    fastest = first.seconds
    for _ in range(TRIES - 1):
        if seconds_bound is None or fastest < seconds_bound:
            break
        fastest = min(fastest, _once(call, expected).seconds)
    return Spent(first.result, fastest, first.peak_growth)


def _once(call: Callable[[], Any], expected: tuple[type[BaseException], ...]) -> Spent:
    _CLEAR_REFS.write_text("5")  # the high-water mark (VmHWM) starts again from the current RSS
    before = _status_kib("VmRSS")
    gc.freeze()  # what was live before the call is left out of any collection inside it
    started = time.thread_time()  # the decoders and pydantic-core run in this thread
    try:
        result: Any = call()
    except expected as exc:
        result = exc
    finally:
        seconds = time.thread_time() - started
        gc.unfreeze()
    return Spent(result, seconds, max(0, _status_kib("VmHWM") - before) * 1024)
