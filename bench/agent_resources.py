"""Agent budget: RSS and CPU of ``khien-agent run`` at default settings, and one full inventory's wall time.

Usage:
    .venv/bin/python bench/agent_resources.py [--seconds 600] [--interval 5]

Starts a real ``khien server`` on loopback (SQLite in a temporary dir), enrolls a real agent, runs it
with default settings for --seconds while sampling its RSS and CPU with psutil, then times
``collect_sections()`` in a fresh interpreter. Goal (issue 2): ≤ 35 MB RSS steady state, inventory ≤ 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
import psutil

from collector.agents import service as agents
from collector.db import Database
from collector.units import service as units
from collector.units.models import UnitCreate


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path) -> tuple[subprocess.Popen, str, str]:
    url = f"sqlite:///{tmp}/khien.db"
    db = Database(url)
    db.upgrade()
    with db.transaction() as s:
        units.create(s, data=UnitCreate(code="B", name="Bench", kind="province"))
        token = agents.create_enrollment_token(s, unit_code="B", expires_in=timedelta(hours=1), max_uses=1)
    db.dispose()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "khien.cli", "server", "--database-url", url, "--port",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return server, base, token


def enroll_agent(base: str, token: str, state: Path) -> None:
    """Enroll a real agent process into ``state`` against the server at ``base``."""
    subprocess.run([sys.executable, "-m", "agent", "enroll", "--server", base, "--token", token,
                    "--state-dir", str(state)], check=True, capture_output=True)


def sample_agent(state: Path, seconds: float, interval: float) -> list[tuple[float, float, float]]:
    proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "--state-dir", str(state)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ps = psutil.Process(proc.pid)
    ps.cpu_percent(None)
    samples = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            time.sleep(interval)
            with ps.oneshot():
                samples.append((time.monotonic() - started, ps.memory_info().rss / 2**20, ps.cpu_percent(None)))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return samples


def inventory_wall_time(runs: int = 5) -> list[float]:
    code = ("import time; from agent.collectors.inventory import collect_sections\n"
            f"for _ in range({runs}):\n t=time.perf_counter(); collect_sections(); print(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return [float(x) for x in out.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--interval", type=float, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="khien-agent-bench-"))
    server, base, token = start_server(tmp)
    try:
        state = tmp / "agent"
        enroll_agent(base, token, state)
        samples = sample_agent(state, args.seconds, args.interval)
    finally:
        server.terminate()
        server.wait(timeout=30)
    steady = [s for s in samples if s[0] >= min(60.0, args.seconds / 2)]
    rss = [s[1] for s in steady]
    cpu = [s[2] for s in samples]
    print(f"agent run for {args.seconds:.0f}s at default settings ({len(samples)} samples, cpus={os.cpu_count()}):")
    print(f"  RSS steady state: median {statistics.median(rss):.1f} MiB, max {max(rss):.1f} MiB "
          f"(max over whole run {max(s[1] for s in samples):.1f} MiB)")
    print(f"  CPU: mean {statistics.mean(cpu):.2f}% of one core, max sample {max(cpu):.1f}%")
    times = inventory_wall_time()
    print(f"  full inventory wall time: first {times[0] * 1000:.0f} ms, "
          f"median {statistics.median(times) * 1000:.0f} ms over {len(times)} runs")


if __name__ == "__main__":
    main()
