"""Load-time time bound for rule regexes.

Static detection of catastrophic backtracking is unreliable, so we measure instead: a child Python
process runs each pattern against inputs built from the pattern's own characters (long runs with a
failing tail, filler followed by just-too-few matches) and reports per input how long it took. A
pattern that exceeds the budget (CPU time, so a busy machine does not reject good patterns), or hangs
until the parent kills the child, is rejected. A few children (at most one per CPU) serve a whole load
and verdicts are cached, so a normal load pays for one round of interpreter start-ups.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time

# Per adversarial input. Ordinary patterns take microseconds on these 300-character inputs; quadratic
# ones such as `.*a` or `\\S{40,}x` about a millisecond; the rejected shapes 30 ms to forever.
INPUT_BUDGET_S = 0.008
# Wall time for one search before the parent kills the child (truly exponential patterns never return).
INPUT_TIMEOUT_S = 0.5
STARTUP_TIMEOUT_S = 10.0
MAX_CHILDREN = max(1, min(4, os.cpu_count() or 1))
MIN_CHUNK = 16

_cache: dict[tuple[str, int], bool] = {}

_CHILD = r'''
import json, re, sys, time
try:
    import re._parser as P
    C = re._constants
except ImportError:  # Python < 3.11
    import sre_parse as P, sre_constants as C
N = 300
FILLERS = ["!", " "]

def chars_and_counts(pattern, flags):
    chars, counts = [], {3}
    def add(c):
        if c not in chars and len(chars) < 8:
            chars.append(c)
    def walk(items):
        for op, av in items:
            if op is C.LITERAL:
                add(chr(av))
            elif op is C.IN:
                for o, a in av:
                    if o is C.LITERAL: add(chr(a))
                    elif o is C.RANGE: add(chr(a[0]))
                    elif o is C.CATEGORY: add({"CATEGORY_DIGIT": "0", "CATEGORY_SPACE": " "}.get(str(a), "a"))
            elif op is C.ANY:
                add("a")
            elif op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)):
                lo = av[0]
                if 1 < lo <= 64: counts.add(lo - 1)
                walk(av[2])
            elif op is C.SUBPATTERN:
                walk(av[-1])
            elif op is C.BRANCH:
                for b in av[1]: walk(b)
            elif op in (C.ASSERT, C.ASSERT_NOT):
                walk(av[1])
            elif op is getattr(C, "ATOMIC_GROUP", None):
                walk(av)
    walk(P.parse(pattern, flags))
    add("a")
    return chars, sorted(counts)

def inputs(pattern, flags):
    chars, counts = chars_and_counts(pattern, flags)
    for c in chars:  # short runs: enough to make exponential backtracking explode
        yield c * 40 + "\x00"
    for i, a in enumerate(chars):
        for b in chars[i + 1:]:
            yield (a + b) * 20 + "\x00"
    for c in chars:  # long runs: polynomial blow-ups such as (.*a){12} need length, not repetition
        yield c * N + "!"
        for f in FILLERS:
            if f != c:
                for k in counts:
                    yield f * N + c * k
                    yield c * k + f * N

def main():
    jobs = json.loads(sys.stdin.readline())
    sys.stdout.write("ready\n"); sys.stdout.flush()
    budget = float(sys.argv[1])
    for index, (pattern, flags) in enumerate(jobs):
        sys.stdout.write("start %d\n" % index); sys.stdout.flush()
        compiled, worst = re.compile(pattern, flags), 0.0
        for text in inputs(pattern, flags):
            spent = budget + 1
            for _attempt in range(3):  # best of three: a scheduler hiccup must not reject a pattern
                t = time.process_time()
                compiled.search(text)
                spent = min(spent, time.process_time() - t)
                if spent <= budget:
                    break
            worst = max(worst, spent)
            sys.stdout.write("tick\n"); sys.stdout.flush()
            if worst > budget:
                break
        sys.stdout.write("done %d %.6f\n" % (index, worst)); sys.stdout.flush()
main()
'''


def slow_patterns(patterns: list[tuple[str, int]]) -> set[tuple[str, int]]:
    """Return the (pattern, flags) pairs that fail the time bound."""
    todo = sorted({p for p in patterns if p not in _cache})
    while todo:
        # A few children in parallel: each pattern costs a few milliseconds of adversarial searching.
        size = max(MIN_CHUNK, -(-len(todo) // MAX_CHILDREN))
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
        children = [(_spawn(chunk), chunk) for chunk in chunks]
        todo = []
        for proc, chunk in children:
            verdicts, finished = _collect(proc, chunk)
            _cache.update(verdicts)
            todo.extend(chunk[finished:])  # the child was killed on a hanging pattern; retry the rest
    return {p for p in patterns if _cache.get(p, True) is False}


def _spawn(jobs: list[tuple[str, int]]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _CHILD, str(INPUT_BUDGET_S)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={"PATH": os.environ.get("PATH", "")})
    assert proc.stdin is not None
    proc.stdin.write((json.dumps(jobs) + "\n").encode())
    proc.stdin.close()
    return proc


def _collect(proc: subprocess.Popen, jobs: list[tuple[str, int]]) -> tuple[dict[tuple[str, int], bool], int]:
    """Read one child's verdicts; returns them and how many jobs got a verdict."""
    verdicts: dict[tuple[str, int], bool] = {}
    reader = None
    try:
        assert proc.stdout is not None
        reader = _LineReader(proc.stdout)
        if reader.next(STARTUP_TIMEOUT_S) != "ready":
            raise RuntimeError("regex checker did not start")
        for index, job in enumerate(jobs):
            started = reader.next(STARTUP_TIMEOUT_S)
            done = reader.next(INPUT_TIMEOUT_S)
            while done == "tick":
                done = reader.next(INPUT_TIMEOUT_S)
            if started != f"start {index}" or done is None:
                verdicts[job] = False  # hung or died on this pattern: that is the verdict
                return verdicts, index + 1
            verdicts[job] = float(done.split()[2]) <= INPUT_BUDGET_S
        return verdicts, len(jobs)
    finally:
        if reader is not None:
            reader.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


class _LineReader:
    """Reads lines from a pipe with a per-line deadline (the child may hang mid-pattern)."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._fd = stream.fileno()
        self._buffer = ""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)

    def next(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while "\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                return None
            chunk = os.read(self._fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk.decode("utf-8", "replace")
        line, self._buffer = self._buffer.split("\n", 1)
        return line

    def close(self) -> None:
        self._selector.close()
