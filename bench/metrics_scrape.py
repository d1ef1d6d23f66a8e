"""What one scrape of /metrics costs with N enrolled agents, each with a realistic last heartbeat.

Usage:
    .venv/bin/python -m bench.metrics_scrape [--agents 10000] [--scrapes 20] [--database-url URL]

Without --database-url a fresh SQLite file under /tmp is used; a PostgreSQL URL names a database that
is dropped and created. Agents are enrolled through the service (bench/load_enroll.py); every fifth
reports drops in its heartbeat. Prints the scrape's wall time (p50, max) and the process CPU per
scrape. Prometheus scrapes every 15 s by default, from each server process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import bindparam, update

from bench.common import fresh_database
from bench.load_enroll import prepare_agents
from bench.load_items import heartbeat
from collector.agents.models import Agent
from collector.app import create_app
from collector.db import Database
from collector.settings import load_settings

DROP_REASONS = ("spool_full", "rate_limited:authlog", "rate_limited:overall", "disk_full")


def seed_heartbeats(db: Database, entries: list[dict]) -> None:
    """Every agent's last heartbeat as the agent sends it; every fifth has dropped something."""
    rows = []
    for entry in entries:
        rng = random.Random(entry["index"])
        data = heartbeat(uptime_s=3600.0, spool_items=rng.randint(0, 50), items_sent=rng.randint(0, 5000), rng=rng)
        if entry["index"] % 5 == 0:
            data["dropped"] = {reason: rng.randint(1, 500) for reason in rng.sample(DROP_REASONS, 2)}
        rows.append({"agent": entry["agent_id"], "heartbeat": data})
    statement = update(Agent).where(Agent.id == bindparam("agent")).values(last_heartbeat=bindparam("heartbeat"))
    with db.engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            conn.execute(statement, rows[start:start + 1000])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=10_000)
    p.add_argument("--scrapes", type=int, default=20)
    p.add_argument("--database-url", default="")
    args = p.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="khien-bench-metrics-"))
    url = args.database_url or f"sqlite:///{data_dir / 'khien.db'}"
    fresh_database(url)
    db = Database(url)
    db.upgrade()
    entries, _ = prepare_agents(db, database_url=url, count=args.agents, urls=[], via="service", packages=0,
                                reuse=False, first_inventory="needed", every_s=0, duration_s=0)
    seed_heartbeats(db, entries)
    settings = dataclasses.replace(load_settings(data_dir=data_dir, database_url=url), scheduler=False,
                                   leader_candidate=False)  # measure the scrape, not detection or jobs
    walls, cpus = [], []
    with TestClient(create_app(settings, db=db)) as client:
        client.get("/metrics")  # warm: connections, compiled statements
        for _ in range(args.scrapes):
            wall, cpu = time.perf_counter(), time.process_time()
            assert client.get("/metrics").status_code == 200
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    print(json.dumps({"agents": args.agents, "backend": db.engine.dialect.name, "scrapes": args.scrapes,
                      "wall_ms_p50": round(statistics.median(walls) * 1000, 1),
                      "wall_ms_max": round(max(walls) * 1000, 1),
                      "cpu_ms_p50": round(statistics.median(cpus) * 1000, 1)}))


if __name__ == "__main__":
    main()
