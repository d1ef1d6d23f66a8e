"""FIM benchmark: realtime latency (file write → event emitted) and a 100k-file baseline's time and RSS.

Usage:
    .venv/bin/python bench/fim.py [--writes 200] [--interval 0.5] [--files 100000]

Latency: a started FimCollector watches a temp dir; a drain loop calls ``run()`` every --interval
seconds (as the scheduler would) while this process writes --writes files 50 ms apart; latency is
from each write's return to the emission of its ``created`` event. Burst limits are lifted here so
every write gets its own event. Baseline: --files small files (1 KiB random, 1,000 per directory)
are generated, then a fresh interpreter builds the baseline (stat + sha256 of every file into SQLite)
and reports the wall time, a no-change rescan's time, and its RSS after each step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.collectors.fim import FimCollector  # noqa: E402


class TimingSink:
    """Records when each path's first event was emitted."""

    def __init__(self) -> None:
        self.emitted: dict[str, float] = {}

    def emit(self, item) -> None:
        self.emitted.setdefault(item.data.get("path", ""), time.monotonic())


def latency(writes: int, interval: float) -> dict[str, float]:
    """Median/p99/max seconds from write to event, with the drain loop polling every ``interval``."""
    with tempfile.TemporaryDirectory() as tmp:
        watched = Path(tmp, "w")
        watched.mkdir()
        fim = FimCollector(Path(tmp, "state"), paths=[str(watched)], web_roots=[], burst_per_dir=10**6,
                           burst_total=10**6)
        sink = TimingSink()
        fim.run(sink)
        fim.start()
        stop = threading.Event()

        def drain() -> None:
            while not stop.is_set():
                fim.run(sink)
                stop.wait(interval)

        thread = threading.Thread(target=drain, daemon=True)
        thread.start()
        written: dict[str, float] = {}
        for i in range(writes):
            path = watched / f"f{i:04}"
            path.write_bytes(os.urandom(512))
            written[str(path)] = time.monotonic()
            time.sleep(0.05)
        deadline = time.monotonic() + 10
        while len(set(written) & set(sink.emitted)) < writes and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        thread.join()
        fim.close()
    lat = sorted(sink.emitted[p] - t for p, t in written.items() if p in sink.emitted)
    return {"writes": writes, "seen": len(lat), "interval_s": interval,
            "median_s": round(statistics.median(lat), 3),
            "p99_s": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3), "max_s": round(lat[-1], 3)}


def generate(root: Path, files: int) -> None:
    for i in range(files):
        d = root / f"d{i // 1000:03}"
        if i % 1000 == 0:
            d.mkdir()
        (d / f"f{i:06}").write_bytes(os.urandom(1024))


CHILD = """
import json, sys, time, psutil
from pathlib import Path
from agent.collectors.base import ListSink
from agent.collectors.fim import FimCollector
proc = psutil.Process()
rss0 = proc.memory_info().rss
# Unpaced (slice_ms=None): this measures the work itself; the agent spreads it at 2 % of a core.
fim = FimCollector(Path(sys.argv[1]), paths=[sys.argv[2]], web_roots=[], max_files=10**6, slice_ms=None)
sink = ListSink()
t = time.perf_counter(); fim.run(sink); build = time.perf_counter() - t
rss_build = proc.memory_info().rss
fim.start()
t = time.perf_counter(); fim.last_rescan = -1e12; fim.run(sink); rescan = time.perf_counter() - t
rss_rescan = proc.memory_info().rss
fim.close()
print(json.dumps({"files_in_baseline": fim.counters["files"], "items": len(sink.items),
                  "baseline_s": round(build, 2), "rescan_s": round(rescan, 2),
                  "rss_mb_after_imports": round(rss0 / 2**20, 1), "rss_mb_after_baseline": round(rss_build / 2**20, 1),
                  "rss_mb_after_rescan_with_realtime": round(rss_rescan / 2**20, 1),
                  "peak_rss_mb": round(psutil.Process().memory_full_info().rss / 2**20, 1),
                  "db_mb": round(Path(sys.argv[1], "fim.db").stat().st_size / 2**20, 1)}))
"""


def baseline(files: int) -> dict[str, object]:
    """Generate the tree, then time the baseline in a fresh interpreter (clean RSS)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "tree")
        root.mkdir()
        t = time.perf_counter()
        generate(root, files)
        gen = time.perf_counter() - t
        out = subprocess.run([sys.executable, "-c", CHILD, str(Path(tmp, "state")), str(root)], cwd=REPO,
                             capture_output=True, text=True, check=True)
    return {"files": files, "generate_s": round(gen, 1)} | json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--files", type=int, default=100_000)
    args = parser.parse_args()
    print("latency", json.dumps(latency(args.writes, args.interval)), flush=True)
    print("baseline", json.dumps(baseline(args.files)), flush=True)


if __name__ == "__main__":
    main()
