"""Ingest throughput: a real ``khien server`` under concurrent simulated agents vs raw executemany.

Usage:
    .venv/bin/python bench/ingest.py [--database-url URL] [--agents 50] [--batches 40] [--items 200]

Without --database-url a fresh SQLite file is used; for PostgreSQL pass a URL to an EMPTY database
(e.g. create one with ``createdb -h 127.0.0.1 -U postgres khien_bench``). Prints items/s for the
server path (HTTP + gzip + validation + idempotency + one transaction per batch) and for plain
SQLAlchemy ``executemany`` of the same rows into the same table, each batch its own transaction.
Loopback only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert

from agent.wire import Batch
from collector.agents import service as agents
from collector.db import Database
from collector.events.models import Event
from collector.hosts import service as hosts
from collector.units import service as units
from collector.units.models import UnitCreate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def event_items(n: int, seq: int) -> list[dict]:
    """Realistic-size items: an agent error report shaped like a parsed auth-log line."""
    ts = datetime.now(UTC).isoformat()
    return [{"type": "agent.error", "ts": ts, "data": {
        "collector": "authlog", "count": seq * n + i,
        "error": f"Failed password for invalid user admin{i} from 203.0.113.{i % 250} port {40000 + i} ssh2"}}
        for i in range(n)]


def enroll_agents(db: Database, port: int, count: int) -> list[str]:
    with db.transaction() as s:
        token = agents.create_enrollment_token(s, unit_code="B1", expires_in=timedelta(hours=1), max_uses=None)
    creds = []
    for i in range(count):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = json.dumps({"token": token, "hostname": f"bench{i}", "machine_id": uuid.uuid4().hex, "macs": []})
        conn.request("POST", "/api/v1/agent/enroll", body, {"Content-Type": "application/json"})
        resp = json.loads(conn.getresponse().read())
        creds.append(f"{resp['agent_id']}.{resp['secret']}")
        conn.close()
    return creds


def run_agent(port: int, cred: str, bodies: list[bytes], results: list[int], errors: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {cred}", "Content-Encoding": "gzip", "Content-Type": "application/json"}
    accepted = 0
    for body in bodies:
        while True:
            conn.request("POST", "/api/v1/agent/batches", body, headers)
            resp = conn.getresponse()
            payload = resp.read()
            if resp.status == 429:
                time.sleep(float(resp.getheader("Retry-After", "1")))
                continue
            if resp.status != 202:
                errors.append(f"{resp.status} {payload[:200]!r}")
            else:
                accepted += json.loads(payload)["accepted"]
            break
    conn.close()
    results.append(accepted)


def bench_server(db: Database, url: str, args: argparse.Namespace, data_dir: str) -> float:
    port = free_port()
    env = os.environ | {"KHIEN_AGENT_RATE_PER_S": "100000", "KHIEN_AGENT_RATE_BURST": "100000"}
    server = subprocess.Popen([sys.executable, "-m", "khien.cli", "server", "--database-url", url,
                               "--data-dir", data_dir, "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        creds = enroll_agents(db, port, args.agents)
        per_agent = [[Batch(items=event_items(args.items, b)).encode() for b in range(args.batches)]
                     for _ in creds]
        results: list[int] = []
        errors: list[str] = []
        threads = [threading.Thread(target=run_agent, args=(port, c, bodies, results, errors))
                   for c, bodies in zip(creds, per_agent, strict=True)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    if errors:
        raise SystemExit(f"{len(errors)} errors, first: {errors[0]}")
    total = sum(results)
    print(f"server: {total} items in {elapsed:.2f}s over {args.agents} agents -> {total / elapsed:,.0f} items/s "
          f"({total / args.items / elapsed:,.0f} batches/s)")
    return total / elapsed


def prepare(db: Database) -> tuple[int, int]:
    """Units and one host for the raw inserts: (host_id, unit_id)."""
    with db.transaction() as s:
        units.create(s, data=UnitCreate(code="B", name="Bench", kind="province"))
        unit = units.create(s, data=UnitCreate(code="B1", name="Bench dept", kind="department", parent_code="B"))
        host = hosts.find_or_create(s, unit_id=unit.id, identity={"hostname": "raw", "machine_id": "raw"},
                                    now=datetime.now(UTC))
        return host.id, unit.id


def bench_raw(db: Database, args: argparse.Namespace, host_id: int, unit_id: int) -> float:
    batches = args.agents * args.batches
    now = datetime.now(UTC)
    rows = [[{"unit_id": unit_id, "host_id": host_id, "type": "agent.error", "ts": now, "received_at": now,
              "origin": "agent", "data": item["data"]} for item in event_items(args.items, b)]
            for b in range(batches)]
    started = time.perf_counter()
    for batch in rows:
        with db.engine.begin() as conn:
            conn.execute(insert(Event), batch)
    elapsed = time.perf_counter() - started
    total = batches * args.items
    print(f"raw executemany: {total} items in {elapsed:.2f}s -> {total / elapsed:,.0f} items/s")
    with db.engine.begin() as conn:
        conn.execute(delete(Event).where(Event.host_id == host_id, Event.type == "agent.error"))
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--batches", type=int, default=40, help="batches per agent")
    parser.add_argument("--items", type=int, default=200, help="items per batch")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/server rounds")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="khien-bench-")
    url = args.database_url or f"sqlite:///{data_dir}/khien.db"
    db = Database(url)
    db.upgrade()
    # Alternate rounds: the raw rate swings with WAL checkpoints and machine noise, so compare medians.
    raw_rates, server_rates = [], []
    host_id, unit_id = prepare(db)
    for _ in range(args.rounds):
        raw_rates.append(bench_raw(db, args, host_id, unit_id))
        server_rates.append(bench_server(db, url, args, data_dir))
    raw, server = statistics.median(raw_rates), statistics.median(server_rates)
    print(f"{db.engine.dialect.name}: median server {server:,.0f} items/s, median raw {raw:,.0f} items/s "
          f"-> server path is {100 * server / raw:.0f}% of raw executemany")


if __name__ == "__main__":
    main()
