"""The measured side: real ``khien server`` processes, their CPU and memory, their /metrics.

CPU is sampled every second with psutil over each server's PID and its children, as % of one core;
the load generator samples itself the same way, so a saturated client shows. On PostgreSQL the
backends serving the bench database (found in pg_stat_activity) are sampled too, as "database".
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

READY_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30
METRIC_LINE = re.compile(r'^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$')


@dataclass
class ServerProcess:
    index: int
    port: int
    database_url: str
    data_dir: Path
    scheduler: bool
    # False: the leader's own process, which the proxy sends no agent traffic (--leader-process); True
    # with leader_candidate False: an agent-facing process that never leads.
    agent_facing: bool = True
    leader_candidate: bool = True
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        """Kept after the run (the data dir is not), for a look at what the server said."""
        return Path(tempfile.gettempdir()) / f"khien-bench-load-server-{self.port}.log"

    def start(self) -> None:
        """Start ``khien server`` (this interpreter's, so the venv under test) with defaults but the scheduler."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KHIEN_")}
        env["KHIEN_SCHEDULER"] = "1" if self.scheduler else "0"
        env["KHIEN_LEADER_CANDIDATE"] = "1" if self.leader_candidate else "0"
        command = [sys.executable, "-m", "khien.cli", "server", "--data-dir", str(self.data_dir),
                   "--database-url", self.database_url, "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise SystemExit(f"khien server {self.index} exited:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                if httpx.get(f"{self.url}/healthz", timeout=2).json().get("status") == "ok":
                    return
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"khien server {self.index} not ready after {READY_TIMEOUT_S} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM (uvicorn finishes what is queued), SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def metrics(self) -> dict[str, float]:
        """/metrics as {'name{labels}': value} (empty if the server does not answer)."""
        try:
            text = httpx.get(f"{self.url}/metrics", timeout=60).text
        except httpx.HTTPError:
            return {}
        out: dict[str, float] = {}
        for line in text.splitlines():
            found = METRIC_LINE.match(line)
            if found and not line.startswith("#"):
                key = found["name"] + (f"{{{found['labels']}}}" if found["labels"] else "")
                with contextlib.suppress(ValueError):
                    out[key] = float(found["value"])
        return out


def start_servers(*, count: int, base_port: int, database_url: str, data_dir: Path,
                  scheduler: bool, leader_process: bool = False) -> list[ServerProcess]:
    """Start ``count`` servers on consecutive ports, all on one database, and wait until each answers.

    ``leader_process``: one more server (the last) that leads and takes no agent traffic; the ``count``
    agent-facing ones never lead (KHIEN_LEADER_CANDIDATE=0)."""
    servers = [ServerProcess(i, base_port + i, database_url, data_dir, scheduler, leader_candidate=not leader_process)
               for i in range(count)]
    if leader_process:
        servers.append(ServerProcess(count, base_port + count, database_url, data_dir, scheduler, agent_facing=False))
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
    except BaseException:
        stop_servers(servers)
        raise
    return servers


def stop_servers(servers: list[ServerProcess]) -> None:
    for server in servers:
        server.stop()


@dataclass
class Usage:
    """CPU (% of one core) and RSS samples of one group of processes."""

    cpu: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | None]:
        if not self.cpu:
            return {"cpu_avg_pct": None, "cpu_peak_pct": None, "rss_peak_mb": None}
        return {"cpu_avg_pct": round(sum(self.cpu) / len(self.cpu), 1), "cpu_peak_pct": round(max(self.cpu), 1),
                "rss_peak_mb": round(max(self.rss_mb), 1)}


class Sampler:
    """Every ``interval_s`` inside [start_wall, stop_wall]: CPU and RSS per group of processes.

    A group is (PIDs, recursive): the servers count with their children; the client is this process
    alone (its children are the servers) plus its client processes.
    """

    def __init__(self, groups: dict[str, tuple[list[int], bool]], *, start_wall: float, stop_wall: float,
                 database_pids: Callable[[], list[int]] | None = None, interval_s: float = 1.0) -> None:
        self.groups = {name: (list(pids), recursive) for name, (pids, recursive) in groups.items()}
        self.start_wall, self.stop_wall = start_wall, stop_wall
        self.database_pids = database_pids  # the PostgreSQL backends serving the bench database
        self.interval_s = interval_s
        names = [*self.groups, *(["database"] if database_pids else [])]
        self.usage: dict[str, Usage] = {name: Usage() for name in names}
        self._procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)
        self._db_pids: list[int] = []
        self._db_pids_at = float("-inf")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, dict[str, float | None]]:
        self._stop.set()
        self._thread.join(timeout=10)
        return {name: usage.summary() for name, usage in self.usage.items()}

    def _members(self, roots: list[int], recursive: bool) -> list[psutil.Process]:
        found: list[psutil.Process] = []
        for pid in roots:
            with contextlib.suppress(psutil.Error):
                root = self._proc(pid)
                found.append(root)
                if recursive:
                    found.extend(self._proc(child.pid) for child in root.children(recursive=True))
        return found

    def _proc(self, pid: int) -> psutil.Process:
        if pid not in self._procs:
            self._procs[pid] = psutil.Process(pid)
            self._procs[pid].cpu_percent(None)  # the first call only sets the baseline
        return self._procs[pid]

    def _measure(self, procs: list[psutil.Process], seen: dict[int, tuple[float, float]]) -> tuple[float, float]:
        """Summed (CPU %, RSS bytes); each process is read once per tick, however many groups hold it,
        because ``cpu_percent`` covers the time since the previous call on the same process."""
        cpu = rss = 0.0
        for proc in procs:
            if proc.pid not in seen:
                try:
                    seen[proc.pid] = (proc.cpu_percent(None), float(proc.memory_info().rss))
                except psutil.Error:
                    seen[proc.pid] = (0.0, 0.0)  # it exited between the listing and the read
            cpu += seen[proc.pid][0]
            rss += seen[proc.pid][1]
        return cpu, rss

    def _record(self, name: str, usage: tuple[float, float]) -> None:
        self.usage[name].cpu.append(usage[0])
        self.usage[name].rss_mb.append(usage[1] / 1e6)

    def _run(self) -> None:
        # Baselines are taken a second before the window so the first sample inside it covers one second.
        self._stop.wait(max(0.0, self.start_wall - self.interval_s - time.time()))
        first = True
        while not self._stop.is_set() and time.time() <= self.stop_wall + 0.5:
            seen: dict[int, tuple[float, float]] = {}
            for name, (roots, recursive) in self.groups.items():
                usage = self._measure(self._members(roots, recursive), seen)
                if not first:
                    self._record(name, usage)
            if self.database_pids is not None:
                if time.monotonic() - self._db_pids_at > 5:  # backends come and go with the pools
                    self._db_pids = self.database_pids()
                    self._db_pids_at = time.monotonic()
                usage = self._measure(self._members(self._db_pids, False), seen)
                if not first:
                    self._record("database", usage)
            first = False
            self._stop.wait(self.interval_s)
