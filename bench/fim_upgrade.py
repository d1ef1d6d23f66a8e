"""Agent CPU during a 50,000-file package upgrade in a watched directory (issue 3 budget check).

Usage:
    .venv/bin/python -m bench.fim_upgrade [--files 50000] [--seconds 1200]

Starts a real server and a real agent (every default module on, plus the test tree under [fim]
paths), waits for the (paced) baseline, then a separate process rewrites every file (as an upgrade
would) and the agent works it off. Samples the agent's CPU and RSS each second and prints the
highest one-minute CPU average next to the budget's 5 %, how long FIM took to find every change,
what FIM sent, and what the budget did.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.agent_resources import enroll_agent, start_server

WRITER = """
import os, sys
root = sys.argv[1]
for d in sorted(os.listdir(root)):
    for f in sorted(os.listdir(os.path.join(root, d))):
        with open(os.path.join(root, d, f), "w") as fh:
            fh.write("upgraded " + f)
"""


def make_tree(root: Path, files: int, per_dir: int = 100) -> None:
    for i in range(files):
        d = root / f"pkg{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True)
        (d / f"file{i:06d}.so").write_text(f"original {i}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=1200, help="give up after this long")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="khien-fim-upgrade-"))
    tree = tmp / "usr-lib"
    make_tree(tree, args.files)
    config = tmp / "agent.toml"
    config.write_text(f'[fim]\npaths = ["/etc", "/usr/bin", "/usr/sbin", "/usr/local/bin", "{tree}"]\n')
    server, base, token = start_server(tmp)
    state = tmp / "agent"
    try:
        enroll_agent(base, token, state)
        agent = subprocess.Popen([sys.executable, "-m", "agent", "run", "--state-dir", str(state), "--config",
                                  str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples = run_upgrade(psutil.Process(agent.pid), tree, args.seconds)
        agent.terminate()
        agent.wait(timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=30)
    report(samples, state)


def run_upgrade(proc: psutil.Process, tree: Path, seconds: float) -> list[tuple[float, float, int]]:
    """(time, cpu seconds, rss) each second, until the upgrade is worked off or ``seconds`` pass.

    FIM works at a steady pace, so "done" is the CPU going quiet: the baseline before the upgrade
    starts, and every change found (the storm pass and the catch-up pass) after it.
    """
    samples, started, writer, upgraded_at = [], time.monotonic(), None, None
    while time.monotonic() - started < seconds:
        time.sleep(1)
        with proc.oneshot():
            cpu, rss = proc.cpu_times(), proc.memory_info().rss
        samples.append((time.monotonic() - started, cpu.user + cpu.system, rss))
        quiet = len(samples) > 20 and samples[-1][1] - samples[-11][1] < 0.05
        if writer is None and quiet:
            print(f"baseline done after {samples[-1][0]:.0f}s; upgrading {tree}", flush=True)
            writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tree)])
            upgraded_at = samples[-1][0]
            samples.append((samples[-1][0], -1.0, 0))  # marker: upgrade starts
        elif upgraded_at is not None and quiet and samples[-1][0] - upgraded_at > 30:
            print(f"upgrade worked off {samples[-1][0] - upgraded_at - 10:.0f}s after it started", flush=True)
            break
    else:
        print(f"stopped at the {seconds:.0f}s limit before FIM went quiet", flush=True)
    if writer:
        writer.wait()
    return samples


def report(samples: list[tuple[float, float, int]], state: Path) -> None:
    start = next(i for i, (_, c, _) in enumerate(samples) if c < 0)
    before, after = samples[:start], samples[start + 1:]
    whole = [100 * (b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(before, before[60:], strict=False)]
    per_second = [100 * (b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(after)]
    minute = [100 * (after[i + 60][1] - after[i][1]) / (after[i + 60][0] - after[i][0])
              for i in range(max(0, len(after) - 60))]
    status = json.loads((state / "status.json").read_text())
    fim = status["collectors"].get("fim", {})
    print(f"during/after the upgrade: max one-minute average CPU {max(minute, default=0):.2f}% (budget 5%), "
          f"median second {statistics.median(per_second):.1f}%, max second {max(per_second):.1f}%")
    print(f"baseline: max one-minute average CPU {max(whole, default=0):.2f}%, "
          f"RSS at its end {before[-1][2] / 1e6:.1f} MB")
    print(f"RSS during/after the upgrade: max {max(s[2] for s in after) / 1e6:.1f} MB, "
          f"last {after[-1][2] / 1e6:.1f} MB (budget 60 MB)")
    print(f"budget: {status.get('budget')}")
    print(f"fim: runs {fim.get('runs')}, items {fim.get('items')}, status {fim.get('status')}, "
          f"counters {fim.get('counters')}")
    print(f"spool dropped: {status['spool'].get('dropped')}")


if __name__ == "__main__":
    main()
