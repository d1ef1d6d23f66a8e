"""Console page latency on a large province: the alert queue, the host list, a unit dashboard, the ranking.

Usage:
    .venv/bin/python -m bench.console [--database-url URL] [--reuse] [--requests 200] [--concurrency 4]
                                      [--alerts 1000000] [--hosts 50000] [--port 18765]

Without --database-url a fresh SQLite file under /tmp is used; a PostgreSQL URL names a database that is
dropped and created (``postgresql+psycopg://postgres@127.0.0.1:5432/khien_bench_console``). ``--reuse``
measures a database an earlier run prepared (same URL) without generating it again.

Three processes: bench/scoring.py's generator fills the database (500 units, 50,000 hosts, 1,000,000
alerts over a year, findings, check results, events, the previous year's frozen snapshots); this process
stores yesterday's daily values (the dashboards read them), adds the bench users, then starts a real
``khien server`` (uvicorn, scheduler off) on a loopback port and, as the load tool, logs in like a browser
and sends ``--requests`` GETs per page from ``--concurrency`` threads, each with its own connection.
Latency is measured client-side, request sent to body read. Results: a table on stdout and
``bench/results/console-<backend>.json``.

Goal (issue 7): p95 < 200 ms for the alert queue and the host list with 1,000,000 alerts and 50,000 hosts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import fresh_database, print_rows  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PASSWORD = "bench console password"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
NEXT_LINK = re.compile(r'href="(/alerts\?[^"]*before[^"]*)"')


def prepare(args: argparse.Namespace) -> dict:
    """Generate the province, store yesterday's daily values, create the bench users."""
    from sqlalchemy import func, select

    from collector.db import Database
    from collector.hosts.models import Host
    from collector.scoring import service as scoring
    from collector.scoring.activity import LOCAL_TZ
    from collector.types import utcnow
    from collector.units.models import Unit
    from collector.users import service as users

    out: dict = {}
    if not args.reuse:
        fresh_database(args.database_url)
        gen_out = Path(tempfile.gettempdir()) / "khien-bench-console-generate.json"
        cmd = [sys.executable, str(ROOT / "bench" / "scoring.py"), "--stage", "generate", "--gen-out", str(gen_out),
               "--units", "500", "--hosts", str(args.hosts), "--findings", str(args.findings),
               "--events", str(args.events), "--alerts", str(args.alerts), "--scan-assets", "4000",
               "--exceptions", "300", "--seed", "1", "--database-url", args.database_url]
        print(f"generating {args.hosts:,} hosts, {args.alerts:,} alerts into {args.database_url} ...", flush=True)
        t = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT)
        out["generate_s"] = round(time.perf_counter() - t, 1)
    db = Database(args.database_url)
    db.upgrade()
    yesterday = (utcnow().astimezone(LOCAL_TZ) - timedelta(days=1)).date()
    with db.transaction() as s:
        if not s.scalar(select(func.count()).select_from(Unit)):
            raise SystemExit("the database holds no province: run without --reuse first")
        t = time.perf_counter()
        scoring.store_day(s, day=yesterday, now=utcnow())
        out["store_day_s"] = round(time.perf_counter() - t, 1)
        # the unit with the most hosts: the heaviest dashboard
        unit_id, _n = s.execute(select(Host.unit_id, func.count()).group_by(Host.unit_id)
                                .order_by(func.count().desc()).limit(1)).one()
        out["unit"] = s.get(Unit, unit_id).code
        for name, role, unit in (("bench-admin", "admin", None), ("bench-officer", "unit_officer", out["unit"])):
            if users.get_by_username(s, username=name) is None:
                users.create(s, username=name, password=PASSWORD, role=role, unit_code=unit)
    db.engine.dispose()
    return out


def start_server(args: argparse.Namespace, data_dir: Path) -> subprocess.Popen:
    env = os.environ | {"KHIEN_DATABASE_URL": args.database_url, "KHIEN_DATA_DIR": str(data_dir),
                        "KHIEN_SCHEDULER": "0", "KHIEN_INSECURE_COOKIES": "1"}
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "khien"), "server", "--port", str(args.port)],
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{base(args)}/login", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not answer within 120 s")


def base(args: argparse.Namespace) -> str:
    return f"http://127.0.0.1:{args.port}"


def logged_in(args: argparse.Namespace, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base(args), timeout=60, follow_redirects=False)
    form = client.get("/login")
    token = CSRF_INPUT.search(form.text).group(1)
    done = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    if done.status_code != 303:
        raise SystemExit(f"login as {username} failed: {done.status_code}")
    return client


def measure_page(args: argparse.Namespace, username: str, path: str) -> dict:
    """``--requests`` GETs of ``path`` from ``--concurrency`` threads, each logged in on its own connection."""
    clients = [logged_in(args, username) for _ in range(args.concurrency)]
    # warm: templates compiled, plans cached, pages in the cache; the first request is a cold view (a
    # dashboard's or the ranking's first view after its cache entry expired), reported as first_ms
    t = time.perf_counter()
    clients[0].get(path)
    first_ms = round((time.perf_counter() - t) * 1000, 1)
    for c in clients[1:]:
        c.get(path)
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    per_thread = max(1, args.requests // args.concurrency)

    def work(client: httpx.Client) -> None:
        for _ in range(per_thread):
            t = time.perf_counter()
            r = client.get(path)
            elapsed = (time.perf_counter() - t) * 1000
            with lock:
                latencies.append(elapsed)
                if r.status_code != 200:
                    errors.append(r.status_code)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    for c in clients:
        c.close()
    latencies.sort()
    return {"path": path, "user": username, "first_ms": first_ms, "requests": len(latencies), "errors": len(errors),
            "error_codes": sorted(set(errors)), "p50_ms": round(statistics.median(latencies), 1),
            "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1), "max_ms": round(latencies[-1], 1),
            "per_s": round(len(latencies) / wall, 1)}


def pages(args: argparse.Namespace, unit: str) -> list[tuple[str, str, str]]:
    """(label, user, path) of every measured page; the alert queue's second page is found by following 'older'."""
    year = datetime.now(UTC).year - 1
    first = logged_in(args, "bench-admin")
    found = NEXT_LINK.search(first.get("/alerts").text)
    first.close()
    out = [("alert queue", "bench-admin", "/alerts"),
           ("alert queue, critical + new", "bench-admin", "/alerts?severity=critical&status=new"),
           ("alert queue, unit officer", "bench-officer", "/alerts"),
           ("host list", "bench-admin", "/hosts"),
           ("host list, unit officer", "bench-officer", "/hosts"),
           ("unit dashboard", "bench-admin", f"/dashboard/{unit}"),
           ("ranking", "bench-admin", f"/ranking?year={year}")]
    if found:
        out.insert(1, ("alert queue, next page", "bench-admin", found.group(1).replace("&amp;", "&")))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=f"sqlite:///{tempfile.gettempdir()}/khien-bench-console.db")
    p.add_argument("--reuse", action="store_true", help="measure a database an earlier run prepared")
    p.add_argument("--alerts", type=int, default=1_000_000)
    p.add_argument("--hosts", type=int, default=50_000)
    p.add_argument("--findings", type=int, default=500_000)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--port", type=int, default=18765)
    args = p.parse_args()
    backend = "sqlite" if args.database_url.startswith("sqlite") else "postgresql"
    prep = prepare(args)
    with tempfile.TemporaryDirectory(prefix="khien-bench-console-") as data_dir:
        server = start_server(args, Path(data_dir))
        try:
            results = []
            for label, user, path in pages(args, prep["unit"]):
                results.append({"page": label, **measure_page(args, user, path)})
                r = results[-1]
                print(f"  {label}: first {r['first_ms']} ms, p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, "
                      f"errors {r['errors']}", flush=True)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"console-{backend}.json"
    path.write_text(json.dumps({"backend": backend, "args": vars(args), "prepare": prep, "pages": results,
                                "cpus": os.cpu_count(), "started": datetime.now(UTC).isoformat()}, indent=1))
    print_rows([(r["page"], f"first {r['first_ms']} ms  p50 {r['p50_ms']} ms  p95 {r['p95_ms']} ms  "
                 f"max {r['max_ms']} ms  {r['per_s']}/s  errors {r['errors']}{r['error_codes'] or ''}")
                for r in results])
    print(f"\nwritten {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
