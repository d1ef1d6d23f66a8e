"""Proof under load: N simulated agents against real ``khien server`` processes, on loopback.

Usage:
    .venv/bin/python -m bench.load [--agents 1000] [--duration 60] [--servers 1|2] [--database-url URL]
                                   [--heartbeat-s 60] [--events-per-min 20] [--inventory-every-s 3600]
                                   [--send-interval-s 5] [--reuse] [--prepare-only] [--port 18800]
                                   [--client-procs 1] [--leader-process] [--matrix]

Without --database-url a fresh SQLite file under /tmp is used; a PostgreSQL URL names a database that
is dropped and created (``postgresql+psycopg://postgres@127.0.0.1:5432/khien_bench_load``). ``--reuse``
keeps the database and the agents an earlier run enrolled in it (same URL); ``--prepare-only`` enrolls
and stops, so several loads can then be measured on one prepared database.

What runs: the database is migrated, ``--servers`` ``khien server`` processes start on consecutive
ports on that one database, and the agents are spread over them round-robin, as a reverse proxy would.
N agents are enrolled (HTTP, like ``khien-agent enroll``); the hosts whose packages change during the
run send their first full inventory (``--first-inventory all``: every host, ~0.1 s of server time each);
then, for ``--duration`` seconds, every agent behaves like the real one (bench/load_agents.py): a
heartbeat every ``--heartbeat-s``, events at ``--events-per-min`` (auth-log lines of sshd, sudo and
su put through the agent's own parser, and FIM changes), a package installed or removed every
``--inventory-every-s`` on average, batched on the agent's 5 s send tick, gzip, real headers,
backing off on 429 (Retry-After) and 503, over keep-alive connections (aiohttp if installed, else
httpx: bench/load_http.py). After the window the agents resend what was not
acknowledged, and the database is checked against the agents' own count: every acknowledged item
stored exactly once.

Measured: sustained items/s and requests/s acknowledged inside the window, p50/p95/p99 latency
(request sent to answer read, client side), errors by status and by exception, the detection stage's
lag and backlog at the end of the window and how long it took to catch up, CPU (% of one core) and
RSS of the servers, of the PostgreSQL backends serving them and of the load generator itself (if the
generator saturates, the figures are its limit, not the server's: a warning says so).

On SQLite, two server processes share one file and its single writer lock: the second process adds
no write capacity; it shows that ingest stays correct across processes, not that SQLite scales out.

Goal (issue 8): 10,000 agents at a 60 s heartbeat plus 20 events/agent/min on PostgreSQL with
p99 < 500 ms and no errors; and the largest N that SQLite holds the same way.
Results: a table on stdout and ``bench/results/load-<backend>-s<servers>-<n|matrix>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

from agent.config import SenderSection  # noqa: E402
from bench.common import fresh_database  # noqa: E402
from bench.load_check import count_stored, database_pids, detection_position, stored_exactly_once  # noqa: E402
from bench.load_client import run_clients  # noqa: E402
from bench.load_enroll import PrepareError, load_state, prepare_agents, save_state, specs_for, state_path  # noqa: E402
from bench.load_http import library  # noqa: E402
from bench.load_report import GOAL_P99_MS, matrix_table, print_run, verdict  # noqa: E402
from bench.load_servers import Sampler, start_servers, stop_servers  # noqa: E402
from collector.db import Database  # noqa: E402
from collector.errors import KhienError  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MATRIX = (1_000, 5_000, 10_000)
DEFAULT_SQLITE = f"sqlite:///{tempfile.gettempdir()}/khien-bench-load.db"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=1_000)
    p.add_argument("--duration", type=float, default=60.0, help="measured window, seconds")
    p.add_argument("--servers", type=int, default=1, choices=(1, 2))
    p.add_argument("--database-url", default=DEFAULT_SQLITE)
    p.add_argument("--heartbeat-s", type=float, default=60.0)
    p.add_argument("--events-per-min", type=float, default=20.0, help="events per agent per minute")
    p.add_argument("--inventory-every-s", type=float, default=3600.0,
                   help="mean seconds between package changes per agent (0: none)")
    p.add_argument("--send-interval-s", type=float, default=SenderSection.interval_s,
                   help=f"the agents' send tick (the real agent's default: {SenderSection.interval_s:g} s; "
                        "a server sets it with KHIEN_AGENT_SEND_S); longer: fewer requests")
    p.add_argument("--packages", type=int, default=400, help="packages per simulated host")
    p.add_argument("--reuse", action="store_true", help="keep the database and the agents enrolled in it")
    p.add_argument("--port", type=int, default=18800, help="first server port (the second server uses port+1)")
    p.add_argument("--client-procs", type=int, default=1, help="load generator processes (agents split among them)")
    p.add_argument("--connections", type=int, default=256, help="keep-alive connections per server")
    p.add_argument("--enroll-via", choices=("http", "service"), default="http",
                   help="enroll through the HTTP API (like khien-agent) or the service function in bulk")
    p.add_argument("--first-inventory", choices=("needed", "all"), default="needed",
                   help="full inventory before the run for the hosts that change packages in it, or for all")
    p.add_argument("--drain-s", type=float, default=60.0, help="time allowed after the window to resend")
    p.add_argument("--settle-s", type=float, default=120.0, help="time allowed for detection to catch up")
    p.add_argument("--leader-process", action="store_true",
                   help="one more server process that leads (detection, jobs) and takes no agent traffic; "
                        "the --servers ones never lead (KHIEN_LEADER_CANDIDATE=0)")
    p.add_argument("--no-scheduler", action="store_true", help="start the servers without their scheduled jobs")
    p.add_argument("--prepare-only", action="store_true",
                   help="enroll and send first inventories, print how long that took, and stop (then run with --reuse)")
    p.add_argument("--matrix", action="store_true", help=f"run N = {', '.join(f'{n:,}' for n in MATRIX)}")
    p.add_argument("--output", help="results file (default bench/results/load-<backend>-s<servers>-<n|matrix>.json)")
    args = p.parse_args(argv)
    for name in ("agents", "client_procs", "connections", "packages"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.send_interval_s <= 0:
        p.error("--send-interval-s must be positive")
    if args.duration < 2 * args.send_interval_s:
        p.error(f"--duration must be at least {2 * args.send_interval_s:g} s (two of the agents' send intervals)")
    if args.heartbeat_s <= 0 or args.events_per_min < 0 or args.inventory_every_s < 0:
        p.error("--heartbeat-s must be positive; rates must not be negative")
    return args


def backend_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def run_once(args: argparse.Namespace, *, agents: int, fresh: bool) -> dict:
    """Prepare, run one load of ``agents`` agents, check the database, and return every figure."""
    url = args.database_url
    if fresh:
        fresh_database(url)
        state_path(url).unlink(missing_ok=True)
    db = Database(url)
    db.upgrade()  # once, before the servers: two processes must not race on the migrations
    data_dir = Path(tempfile.mkdtemp(prefix="khien-bench-load-"))
    servers = start_servers(count=args.servers, base_port=args.port, database_url=url, data_dir=data_dir,
                            leader_process=args.leader_process,
                            scheduler=not args.no_scheduler)
    result: dict = {"agents": agents, "backend": backend_of(url), "servers": args.servers,
                    "leader_process": args.leader_process, "http_library": library()}
    try:
        print(f"[{agents:,} agents] enrolling and sending first inventories ...", flush=True)
        entries, result["prepare"] = prepare_agents(db, database_url=url, count=agents, urls=_agent_urls(servers),
                                                    via=args.enroll_via, packages=args.packages, reuse=not fresh,
                                                    first_inventory=args.first_inventory,
                                                    every_s=args.inventory_every_s, duration_s=args.duration)
        if args.prepare_only:
            return result
        extras = _measure(args, db, servers, specs_for(entries, servers=args.servers), result)
    finally:
        stop_servers(servers)
        db.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)
    # --reuse starts from the packages each host has now
    known = {e["index"]: e for e in load_state(url)}
    for entry in entries:
        known[entry["index"]] = entry | {"extras": extras.get(entry["index"], entry.get("extras", []))}
    save_state(url, [known[i] for i in sorted(known)])
    result["verdict"] = verdict(result)
    return result


def _measure(args: argparse.Namespace, db: Database, servers: list, specs: list, result: dict) -> dict[int, list[int]]:
    """The measured window and the checks after it; fills ``result`` and returns each host's extra packages."""
    before = count_stored(db)
    metrics_before = [s.metrics() for s in servers]
    load_before = os.getloadavg()[0]
    sampler: list[Sampler] = []

    def on_start(start_wall: float, client_pids: list[int]) -> None:
        groups = {"servers": ([s.proc.pid for s in servers], True), "client": ([os.getpid(), *client_pids], False)}
        if len(servers) > 1:
            groups |= {f"server-{s.index}": ([s.proc.pid], True) for s in servers}
        sampler.append(Sampler(groups,
                               database_pids=None if db.is_sqlite else database_pids(db),
                               start_wall=start_wall, stop_wall=start_wall + args.duration))
        sampler[0].start()
        print(f"[{len(specs):,} agents] running {args.duration:g} s ...", flush=True)

    stats, position, result["client_procs"] = run_clients(
        specs, args=args, urls=_agent_urls(servers), on_start=on_start,
        at_window_end=lambda: detection_position(db, servers))
    result["usage"] = sampler[0].stop()
    # Other work on the machine skews every figure here: the 1-minute load average says how busy it was.
    result["machine_load"] = {"before": round(load_before, 1), "after": round(os.getloadavg()[0], 1),
                              "cpus": os.cpu_count()}
    result["run"] = stats.summary(window_s=args.duration, items_window_s=args.duration - args.send_interval_s)
    result["detection"] = position or {}
    result["detection"]["catch_up_s"] = _catch_up(db, servers, args.settle_s)
    metrics_after = [s.metrics() for s in servers]
    result["server_metrics"] = {f"server-{s.index}": _ingest_metrics(m) for s, m in zip(servers, metrics_after,
                                                                                         strict=True)}
    result["server_batch_ms"] = _server_batch_ms(metrics_before, metrics_after)
    result["check"] = stored_exactly_once(db, before=before, after=count_stored(db), stats=stats)
    return stats.extras


def _agent_urls(servers: list) -> list[str]:
    """Where the agents are sent (a proxy's agent upstream): not to a --leader-process."""
    return [s.url for s in servers if s.agent_facing]


def _catch_up(db: Database, servers, settle_s: float) -> float | None:
    """Seconds after the run until the detection cursor reached the newest event (None: not within settle_s)."""
    t = time.perf_counter()
    while time.perf_counter() - t < settle_s:
        now = detection_position(db, servers, scrape=False)
        if now["backlog_events"] == 0:
            return round(time.perf_counter() - t, 1)
        time.sleep(1.0)
    return None


def _server_batch_ms(before: list[dict[str, float]], after: list[dict[str, float]]) -> float | None:
    """Mean time the servers spent on a batch during the run (their khien_ingest_seconds histogram)."""
    def total(snapshots: list[dict[str, float]], name: str) -> float:
        return sum(m.get(name, 0.0) for m in snapshots)

    count = total(after, "khien_ingest_seconds_count") - total(before, "khien_ingest_seconds_count")
    seconds = total(after, "khien_ingest_seconds_sum") - total(before, "khien_ingest_seconds_sum")
    return round(1000 * seconds / count, 1) if count else None


def _ingest_metrics(metrics: dict[str, float]) -> dict[str, float]:
    keep = ("khien_ingest_batches_total", "khien_ingest_duplicate_batches_total", "khien_ingest_rejections_total",
            "khien_ingest_seconds", "khien_detection")
    return {k: v for k, v in metrics.items() if k.startswith(keep)}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    backend = backend_of(args.database_url)
    shape = f"s{args.servers}" + ("+leader" if args.leader_process else "")
    name = f"load-{backend}-{shape}-{'matrix' if args.matrix else f'n{args.agents}'}.json"
    out = Path(args.output) if args.output else RESULTS / name
    out.parent.mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []
    for n in MATRIX if args.matrix else (args.agents,):
        try:
            runs.append(run_once(args, agents=n, fresh=not args.reuse))
        except (KhienError, SQLAlchemyError, PrepareError) as exc:  # one clear line, not a traceback
            raise SystemExit(f"bench.load: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
        if args.prepare_only:
            print(f"prepared {n:,} agents: {runs[-1]['prepare']} (measure them with --reuse)")
            continue
        print_run(runs[-1], args)
        # written after every run, so a matrix stopped half-way keeps what it measured
        out.write_text(json.dumps({"args": vars(args), "cpus": os.cpu_count(),
                                   "finished": datetime.now(UTC).isoformat(),
                                   "goal": {"p99_ms": GOAL_P99_MS, "errors": 0}, "runs": runs}, indent=1))
    if len(runs) > 1:
        print()
        print(matrix_table(runs))
    print(f"\nwritten {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
