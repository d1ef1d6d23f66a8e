"""Daily score computation (CS-ATTT) for a province: 500 units, 50,000 hosts, 2,000,000 findings, 10,000,000 events.

Usage:
    .venv/bin/python bench/scoring.py [--units 500] [--hosts 50000] [--findings 2000000] [--events 10000000]
                                      [--database-url URL] [--small] [--profile] [--variants] [--reuse]
                                      [--seed 1] [--tag=-name]

Without --database-url a fresh SQLite file under /tmp is used. A PostgreSQL URL names a database that
is dropped and created fresh (``postgresql+psycopg://postgres@127.0.0.1:5432/khien_bench_scoring``).
``--small``: 50 units, 5,000 hosts, 200,000 findings, 1,000,000 events. ``--reuse`` measures a database
an earlier run generated (same arguments) without generating it again.

Two processes, as bench/match.py: a child creates the schema (Alembic) and generates a province with
driver-level bulk inserts (executemany on SQLite, COPY on PostgreSQL; secondary indexes dropped for
the load and rebuilt, then ANALYZE; findings, check results and alerts in the order they were written over
time, not host by host): units, hosts, 30 days of host activity, findings, check results
(current and superseded), alerts and events over a year, scan assets, risk exceptions, attestations, and
the previous year's monthly snapshots. The parent, on a fresh connection, measures ``compute`` for one
day, each indicator on its own (``indicators.MEASURED``, with the SQL statements each one ran), ``store_day``,
``freeze_month``, ``ranking.annual`` of the previous year and ``to_xlsx``, with the peak RSS of each phase.
Results: a table on stdout and ``bench/results/scoring-<backend>.json`` (with the query plans of the
statements the indicators run); ``--profile`` adds a cProfile of the first ``compute``; ``--variants``
times other shapes of the two heaviest statements (without the index SQLite walks for their GROUP BY;
with a covering index, created for the run and dropped).

Goal (issue): the daily computation under 30 s on this machine, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, event, func, select, text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import fresh_database, maxrss_mb, phase_mem, print_rows, profile_text, reset_peak  # noqa: E402
from collector.attestations import service as attestations  # noqa: E402
from collector.db import Database  # noqa: E402
from collector.scoring import immutable, indicators, ranking, service  # noqa: E402
from collector.scoring.activity import LOCAL_TZ  # noqa: E402
from collector.scoring.models import ScoreSnapshot  # noqa: E402
from rules.scoring.model import ATTESTED, INDICATORS, builtin_model  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DAY = date(2026, 11, 20)  # the measured day (ended: NOW is after its local midnight)
AT = indicators.end_of_day(DAY)
NOW = AT + timedelta(hours=3)
FREEZE_PERIOD = "2026-11"  # snapshot day 14 November: ended before NOW
PREV_YEAR = DAY.year - 1
AT_S = int(AT.timestamp())
DAY_S = 86_400
YEAR_S = 365 * DAY_S
ACTIVITY_DAYS = indicators.WINDOW_DAYS
CHUNK = 100_000
BIG_TABLES = ("events", "findings", "check_results", "alerts", "host_activity")

# Remediation deadlines (rules/data/sla/remediation_deadlines.yaml) in hours: (exposed, internal, strict).
DEADLINE_H = {"P0": (168, 168, 72), "P1": (360, 720, 168), "P2": (720, 1440, 360), "P3": (2160, 2160, 1440),
              "P4": (4320, 4320, 4320), "critical_misconfig": (72, 168, 24), "failed_check": (720, 720, 360)}
EXPOSURE_RULES = (("exposed-service:rdp", "tcp/3389", "P1"), ("exposed-service:smb", "tcp/445", "P1"),
                  ("exposed-service:telnet", "tcp/23", "P1"), ("exposed-service:mysql", "tcp/3306", "P2"),
                  ("ssh-password-auth", "tcp/22", "P2"), ("tls-weak-protocol", "tcp/443", "P3"),
                  ("tls-expired-certificate", "tcp/443", "P3"), ("http-no-tls", "tcp/80", "P3"))
EVENT_TYPES = ("auth.failure",) * 30 + ("auth.success",) * 25 + ("process.start",) * 15 + ("net.connect",) * 12 + \
    ("file.change",) * 8 + ("service.change",) * 4 + ("pkg.install",) * 3 + ("sudo",) * 2 + ("inventory.changed",)
ALERT_SEVERITY = ("low",) * 40 + ("medium",) * 35 + ("high",) * 20 + ("critical",) * 5
ALERT_OLD_STATUS = ("resolved",) * 70 + ("false_positive",) * 15 + ("duplicate",) * 5 + ("acknowledged",) * 5 + \
    ("new",) * 5
ALERT_NEW_STATUS = ("new",) * 40 + ("acknowledged",) * 30 + ("in_progress",) * 10 + ("resolved",) * 20
VULN_CLASS = ("P0",) * 1 + ("P1",) * 9 + ("P2",) * 30 + ("P3",) * 40 + ("P4",) * 20
CHECK_CLASS = ("critical_misconfig",) * 15 + ("failed_check",) * 85
PACKAGES = ("openssl", "openssh", "linux", "glibc", "curl", "nginx", "apache2", "php8.2", "python3.11", "sudo",
            "systemd", "bind9", "samba", "postgresql-15", "mariadb", "libxml2", "zlib", "git", "vim", "perl",
            "tomcat9", "openjdk-17", "nodejs", "exim4", "dnsmasq", "libssh", "gnutls28", "krb5", "cups", "polkit")


# ---- driver-level values -------------------------------------------------------------------------

class Fmt:
    """Values as the driver takes them: SQLite stores what SQLAlchemy would (naive UTC text, 0/1), COPY text."""

    def __init__(self, pg: bool) -> None:
        self.pg = pg
        self.suffix = "+00" if pg else ".000000"
        self._days: dict[int, str] = {}

    def ts(self, sec: int | None) -> str | None:
        if sec is None:
            return None
        d, r = divmod(sec, DAY_S)
        prefix = self._days.get(d)
        if prefix is None:
            prefix = self._days[d] = datetime.fromtimestamp(d * DAY_S, UTC).strftime("%Y-%m-%d")
        h, r = divmod(r, 3600)
        m, s = divmod(r, 60)
        return f"{prefix} {h:02d}:{m:02d}:{s:02d}{self.suffix}"

    def bool(self, value: bool) -> bool | int:
        return bool(value) if self.pg else int(bool(value))


class Loader:
    """Bulk insert into one table: executemany on SQLite, COPY on PostgreSQL; commits every CHUNK rows."""

    def __init__(self, raw: Any, pg: bool, table: str, cols: tuple[str, ...]) -> None:
        self.raw, self.pg, self.table, self.cols = raw, pg, table, cols
        self.buf: list[tuple] = []
        self.total = 0
        self.names = ", ".join(f'"{c}"' for c in cols)  # "group" is a keyword
        self.sql = f"INSERT INTO {table} ({self.names}) VALUES ({', '.join('?' * len(cols))})"

    def add(self, row: tuple) -> None:
        self.buf.append(row)
        if len(self.buf) >= CHUNK:
            self.flush()

    def extend(self, rows: Iterable[tuple]) -> None:
        for row in rows:
            self.add(row)

    def flush(self) -> None:
        if not self.buf:
            return
        cur = self.raw.cursor()
        if self.pg:
            with cur.copy(f"COPY {self.table} ({self.names}) FROM STDIN") as copy:
                for r in self.buf:
                    copy.write_row(r)
        else:
            cur.executemany(self.sql, self.buf)
        self.raw.commit()
        self.total += len(self.buf)
        self.buf.clear()

    def close(self) -> int:
        self.flush()
        return self.total


def drop_indexes(db: Database, tables: Iterable[str]) -> list[str]:
    """Drop the secondary (non-constraint) indexes of ``tables`` for the load; returns the DDL recreating them."""
    ddl: list[str] = []
    with db.engine.begin() as c:
        for table in tables:
            if db.is_sqlite:
                rows = c.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                                         "AND sql IS NOT NULL", (table,)).all()
            else:
                rows = c.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t AND indexname "
                                      "NOT IN (SELECT conname FROM pg_constraint)"), {"t": table}).all()
            for name, sql in rows:
                c.exec_driver_sql(f'DROP INDEX "{name}"')
                ddl.append(sql)
    return ddl


# ---- the province --------------------------------------------------------------------------------

def host_counts(rng: random.Random, n_units: int, n_hosts: int) -> list[int]:
    """Uneven: about 1 % of the units run 1,000+ servers (scaled down with --small), most 20–100."""
    n_big = max(1, n_units // 100)
    weights = [rng.uniform(1500, 3000) * n_units / 500 for _ in range(n_big)]
    weights += [rng.lognormvariate(math.log(55), 0.55) for _ in range(n_units - n_big)]
    rng.shuffle(weights)
    scale = n_hosts / sum(weights)
    counts = [max(1, int(w * scale)) for w in weights]
    i = 0
    while sum(counts) < n_hosts:
        counts[i % n_units] += 1
        i += 1
    while sum(counts) > n_hosts:
        j = max(range(n_units), key=counts.__getitem__)
        counts[j] -= 1
    return counts


def in_time_order(rows: Iterable[tuple], ts_index: int) -> list[tuple]:
    """Rows sorted by one timestamp column (the text sorts as the time does): the order they were written in."""
    out = list(rows)
    out.sort(key=lambda r: r[ts_index])
    return out


def generate(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    out: dict[str, Any] = {"timings_s": {}, "rows": {}}
    tm = out["timings_s"]
    t_all = time.perf_counter()
    db = Database(args.database_url)
    db.upgrade()
    pg = not db.is_sqlite
    f = Fmt(pg)
    index_ddl = drop_indexes(db, BIG_TABLES)
    raw = db.engine.raw_connection()
    cur = raw.cursor()
    if pg:
        cur.execute("SET session_replication_role = replica")  # no per-row foreign-key triggers during the load
    else:
        for pragma in ("foreign_keys=OFF", "synchronous=OFF", "cache_size=-262144"):
            cur.execute(f"PRAGMA {pragma}")
    raw.commit()

    def load(table: str, cols: tuple[str, ...], rows: Iterable[tuple]) -> int:
        t = time.perf_counter()
        loader = Loader(raw, pg, table, cols)
        loader.extend(rows)
        n = loader.close()
        tm[table] = round(time.perf_counter() - t, 1)
        out["rows"][table] = n
        print(f"  {table}: {n:,} rows in {tm[table]} s", flush=True)
        return n

    # units: the province, ~12 % departments, the rest communes
    n_units = args.units
    n_dept = round(n_units * 0.12)
    created = f.ts(AT_S - 3 * YEAR_S)
    units = [(1, "P1", "Tỉnh", "province", None, created)]
    for i in range(n_units):
        kind = "department" if i < n_dept else "commune"
        units.append((i + 2, f"{'S' if kind == 'department' else 'X'}{i:03d}",
                      f"{'Sở' if kind == 'department' else 'Xã'} {i}", kind, 1, created))
    load("units", ("id", "code", "name", "kind", "parent_id", "created_at"), units)
    unit_ids = [u[0] for u in units[1:]]

    # hosts
    counts = host_counts(rng, n_units, args.hosts)
    hosts: list[tuple[int, int, int, bool, int]] = []  # (id, unit, level, internet-facing, first_seen s)
    hid = 0
    for unit_id, n in zip(unit_ids, counts, strict=True):
        for _ in range(n):
            hid += 1
            level = rng.choices((1, 2, 3, 4, 5), (10, 40, 35, 10, 5))[0] if rng.random() > 0.03 else None
            hosts.append((hid, unit_id, level, rng.random() < 0.10, AT_S - rng.randint(DAY_S, 730 * DAY_S)))
    releases = ("debian:12", "debian:11", "ubuntu:22.04")
    load("hosts", ("id", "unit_id", "machine_id", "macs", "hostname", "platform", "security_level",
                   "internet_facing", "distro", "first_seen", "last_seen", "inventory_hashes"),
         ((h, u, f"{h:032x}", "[]", f"srv{h:05d}", "linux", lvl, f.bool(exp), releases[h % 3], f.ts(fs),
           f.ts(AT_S - 600), "{}") for h, u, lvl, exp, fs in hosts))
    exposed_hosts = [h for h in hosts if h[3]]

    # host activity: 30 days up to the measured day; most hosts every day, some with gaps, a few gone quiet
    def activity() -> Iterable[tuple]:
        first_window = DAY - timedelta(days=ACTIVITY_DAYS - 1)
        days = [(first_window + timedelta(days=i)).isoformat() for i in range(ACTIVITY_DAYS)]
        for h, u, _lvl, _exp, fs in hosts:
            first = datetime.fromtimestamp(fs, LOCAL_TZ).date()
            start = max(0, (first - first_window).days)
            r = rng.random()
            if r < 0.85:
                chosen = days[start:]
            elif r < 0.97:
                p = rng.uniform(0.6, 0.97)
                chosen = [d for d in days[start:] if rng.random() < p]
            else:
                stop = ACTIVITY_DAYS - rng.randint(1, 20)
                chosen = [d for d in days[start:stop] if rng.random() < 0.9]
            for d in chosen:
                yield (h, u, d)
    load("host_activity", ("host_id", "unit_id", "day"), activity())

    # findings: per host, skewed (a few hosts carry hundreds)
    host_w = [rng.lognormvariate(0, 1.0) for _ in hosts]
    per_host = Counter(rng.choices(range(len(hosts)), weights=host_w, k=args.findings))
    n_cves = max(2000, args.findings // 100)
    cves = [f"CVE-{2014 + i % 13}-{10000 + i}" for i in range(n_cves)]
    check_ids = [f"cis_lnx_{i:03d}" for i in range(113)] + list(indicators.ANTIMALWARE.values()) + \
        list(indicators.LOGGING.values())

    def findings() -> Iterable[tuple]:
        fid = 0
        rnd = rng.random
        for idx in sorted(per_host):
            h, u, lvl, exp, _fs = hosts[idx]
            col = 2 if (lvl or 3) >= 4 else (0 if exp or lvl in (3, None) else 1)
            identity = f"host:{h}"
            for _ in range(per_host[idx]):
                fid += 1
                r = rnd()
                if r < 0.85:
                    kind, cls = "vulnerability", VULN_CLASS[int(rnd() * 100)]
                elif r < 0.93:
                    kind, cls = "patch", VULN_CLASS[int(rnd() * 100)]
                elif r < 0.99 or not exp:
                    kind, cls = "check", CHECK_CLASS[int(rnd() * 100)]
                else:
                    kind = "exposure"
                if kind in ("vulnerability", "patch"):
                    rule = cves[int(n_cves * rnd() ** 2)]  # popular CVEs are on many hosts
                    location = PACKAGES[int(rnd() * len(PACKAGES))]
                    cvss = round(2 + 8 * rnd(), 1)
                    state, src = "fixed", "feeds"
                elif kind == "check":
                    rule = check_ids[int(rnd() * 113)]
                    location, cvss, state, src = "", None, None, "agent"
                else:
                    rule, location, cls = EXPOSURE_RULES[int(rnd() * len(EXPOSURE_RULES))]
                    cvss, state, src = None, None, "scan"
                first = AT_S - int(rnd() * YEAR_S)
                due = first + DEADLINE_H[cls][col] * 3600
                fixed = None
                if rnd() >= 0.3:
                    at = first + int(rng.expovariate(1 / (DEADLINE_H[cls][col] * 3600 * 1.2)))
                    fixed = at if at < AT_S - 60 else None
                yield (u, h, identity, kind, rule, location, f"{fid:032x}", 0, f"{rule} ({location or 'host'})",
                       cls, cvss, f.bool(True), state, "open" if fixed is None else "fixed", src, "{}",
                       f.ts(first), f.ts(fixed or AT_S - 3600), f.ts(first), f.ts(due), "", f.ts(fixed), 0, "")
    # inserted in the order they were first seen, as the matcher writes them over a year (rows of one host spread
    # over the whole table, not side by side)
    load("findings", ("unit_id", "host_id", "identity", "kind", "rule", "location", "dedupe_key", "generation",
                      "title", "finding_class", "cvss_score", "fix_available", "distro_state", "status", "sources",
                      "evidence", "first_seen", "last_seen", "clock_start", "due_at", "sla_version", "fixed_at",
                      "reopened_count", "obs_hash"), in_time_order(findings(), 16))

    # check results: ~40 current per host (the named A4/A5 checks among them) plus superseded states
    named = list(indicators.ANTIMALWARE.values()) + list(indicators.LOGGING.values())
    others = check_ids[:113]
    critical = set(others[:8])
    severities = ("low", "medium", "high", "critical")

    def check_results() -> Iterable[tuple]:
        rnd = rng.random
        for h, u, lvl, _exp, fs in hosts:
            level = lvl or 3
            policy = f"lnx-baseline-l{level}"
            for check in named + rng.sample(others, 33):
                r = rnd()
                if check in named:
                    status = "pass" if r < 0.8 else ("fail" if r < 0.95 else "not_applicable")
                else:
                    status = "pass" if r < 0.7 else ("fail" if r < 0.92 else ("not_applicable" if r < 0.995
                                                                             else "error"))
                start = max(fs, AT_S - int(rnd() * 120 * DAY_S))
                crit = f.bool(check in critical)
                sev = severities[int(rnd() * 4)]
                if rnd() < 0.1:  # an earlier state, closed when the current one began
                    old = "fail" if status == "pass" else "pass"
                    yield (u, h, policy, check, old, sev, crit, level, "", "[]", f.ts(start - int(rnd() * 60 * DAY_S)),
                           f.ts(start))
                yield (u, h, policy, check, status, sev, crit, level, "", "[]", f.ts(start), None)
    load("check_results", ("unit_id", "host_id", "policy_id", "check_id", "status", "severity", "critical",
                           "level", "evidence", "requirements", "valid_from", "valid_to"),
         in_time_order(check_results(), 10))

    # alerts over the year, on the hosts that also carry most findings
    rules_ = [f"det_lnx_{i:02d}" for i in range(59)] + [indicators.DEFACEMENT_RULE]
    alert_hosts = rng.choices(range(len(hosts)), weights=host_w, k=args.alerts)

    def alerts() -> Iterable[tuple]:
        rnd = rng.random
        for i, idx in enumerate(alert_hosts):
            h, u, _lvl, exp, _fs = hosts[idx]
            created = AT_S - int(rnd() * YEAR_S)
            status = (ALERT_OLD_STATUS if created < AT_S - 7 * DAY_S else ALERT_NEW_STATUS)[int(rnd() * 100)]
            rule = indicators.DEFACEMENT_RULE if exp and rnd() < 0.01 else rules_[int(rnd() * 59)]
            n = 1 + int(rnd() * 20)
            last = min(created + int(rnd() * 3 * 3600), AT_S - 60)
            yield (u, h, rule, ALERT_SEVERITY[int(rnd() * 100)], f"{i:064x}", "{}", status, n, n * 3, "[]",
                   f.ts(created), f.ts(last), f.ts(created), f.ts(last))
    load("alerts", ("unit_id", "host_id", "rule_id", "severity", "dedupe_key", "group", "status", "count",
                    "event_count", "event_ids", "first_seen", "last_seen", "created_at", "updated_at"),
         in_time_order(alerts(), 10))

    # events: the year, in time order (ids follow time as they do at ingest)
    datas = [json.dumps({"user": u, "src": f"10.{i}.{i * 7 % 255}.{i * 13 % 255}", "n": i}, separators=(",", ":"))
             for i in range(64) for u in ("root",)] + ['{"path":"/etc/passwd","op":"write"}', '{}']
    host_unit = [(h[0], h[1]) for h in hosts]

    def events() -> Iterable[tuple]:
        rnd = rng.random
        n = args.events
        nh, nt, nd = len(host_unit), len(EVENT_TYPES), len(datas)
        start = AT_S - YEAR_S
        step = YEAR_S / n
        ts = f.ts
        for i in range(n):
            h, u = host_unit[int(rnd() * nh)]
            stamp = ts(start + int(i * step))
            yield (u, h, EVENT_TYPES[int(rnd() * nt)], stamp, stamp, "agent", datas[int(rnd() * nd)])
    load("events", ("unit_id", "host_id", "type", "ts", "received_at", "origin", "data"), events())

    # scan assets: the managed hosts' addresses, and addresses nobody reports for
    def scan_assets() -> Iterable[tuple]:
        managed = rng.sample(hosts, min(len(hosts), args.scan_assets * 7 // 10))
        for i, (h, u, _lvl, _exp, fs) in enumerate(managed):
            up = AT_S - int(rng.random() * 10 * DAY_S)
            yield (i + 1, u, f"10.{h >> 16}.{(h >> 8) & 255}.{h & 255}", h, "up", f.ts(max(fs, up - 90 * DAY_S)),
                   f.ts(up), f.ts(up), f.ts(up + 7 * DAY_S))
        for j in range(args.scan_assets - len(managed)):
            u = rng.choice(unit_ids)
            up = AT_S - int(rng.random() * 60 * DAY_S)  # some not seen up within the window
            yield (len(managed) + j + 1, u, f"172.16.{j >> 8}.{j & 255}", None, "up",
                   f.ts(up - int(rng.random() * 200 * DAY_S)), f.ts(up), f.ts(up), f.ts(up + DAY_S))
    load("scan_assets", ("id", "unit_id", "address", "host_id", "state", "first_seen", "last_scanned", "last_up",
                         "next_scan_at"), scan_assets())

    # risk exceptions on findings' rules (popular CVEs): mostly active, some expired or revoked
    def exceptions() -> Iterable[tuple]:
        for i in range(args.exceptions):
            h, u, *_ = rng.choice(hosts)
            scope = rng.choices(("host", "unit", "all"), (70, 27, 3))[0]
            created = AT_S - rng.randint(DAY_S, 200 * DAY_S)
            expires = AT_S + rng.randint(DAY_S, 90 * DAY_S) if rng.random() < 0.85 else AT_S - rng.randint(1, 99)
            revoked = created + DAY_S if rng.random() < 0.05 else None
            yield (i + 1, "finding", cves[int(n_cves * rng.random() ** 3)], scope, u if scope == "unit" else None,
                   h if scope == "host" else None, "Chưa thể vá do phụ thuộc ứng dụng nghiệp vụ",
                   "Cô lập mạng, giám sát tăng cường", "ubnd", "so-tttt", f.ts(created), f.ts(expires), 0,
                   f.ts(revoked))
    load("risk_exceptions", ("id", "target_kind", "target", "scope", "unit_id", "host_id", "justification",
                             "compensating_control", "requested_by", "approved_by", "created_at", "expires_at",
                             "renewals", "revoked_at"), exceptions())

    # attestations: about half of the units had a few items rated for the year
    model = builtin_model()
    items = [item for ident in ATTESTED for item in model.indicators[ident].components]
    ratings = (("dat", 1.0), ("dat_mot_phan", 0.5), ("chua_dat", 0.0))

    def attested() -> Iterable[tuple]:
        aid = 0
        for u in rng.sample(unit_ids, len(unit_ids) // 2):
            for item in rng.sample(items, rng.randint(2, len(items))):
                aid += 1
                rating, value = rng.choices(ratings, (60, 30, 10))[0]
                submitted = AT_S - rng.randint(30 * DAY_S, 300 * DAY_S)
                yield (aid, item, DAY.year, u, "rated", "unit-officer", f.ts(submitted), rating, value, "reviewer",
                       f.ts(submitted + 5 * DAY_S))
    load("attestations", ("id", "item", "period", "unit_id", "status", "submitted_by", "submitted_at", "rating",
                          "rating_value", "reviewed_by", "reviewed_at"), attested())

    # the previous year's frozen snapshots, for the annual ranking
    def snapshots() -> Iterable[tuple]:
        for u in [1, *unit_ids]:
            for month in range(1, 13):
                as_of = date(PREV_YEAR, month, model.snapshot_day)
                frozen = f.ts(int((indicators.end_of_day(as_of) + timedelta(hours=1)).timestamp()))
                for ident in INDICATORS:
                    value = None if ident == "A6" else round(rng.uniform(30, 100), 4)
                    yield (f"{PREV_YEAR}-{month:02d}", u, ident, as_of.isoformat(), value, value, 0.0, 0.0,
                           model.version, "0" * 64, frozen)
    load("score_snapshots", ("period", "unit_id", "indicator", "as_of", "value", "value_without_exceptions",
                             "numerator", "denominator", "model_version", "inputs_hash", "frozen_at"), snapshots())
    if pg:
        for table in ("units", "hosts", "scan_assets", "risk_exceptions", "attestations"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        raw.commit()
    raw.close()

    t = time.perf_counter()
    with db.engine.begin() as c:
        for ddl in index_ddl:
            c.exec_driver_sql(ddl)
    tm["recreate_indexes"] = round(time.perf_counter() - t, 1)
    print(f"  indexes rebuilt in {tm['recreate_indexes']} s", flush=True)
    t = time.perf_counter()
    if db.is_sqlite:
        with db.engine.connect() as c:
            c.exec_driver_sql("ANALYZE")
    else:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    tm["analyze"] = round(time.perf_counter() - t, 1)
    tm["total"] = round(time.perf_counter() - t_all, 1)
    n_findings = out["rows"]["findings"]
    with db.engine.connect() as c:
        kinds = dict(c.exec_driver_sql("SELECT kind, count(*) FROM findings GROUP BY kind").all())
        fixed = c.exec_driver_sql("SELECT count(*) FROM findings WHERE fixed_at IS NOT NULL").scalar_one()
        size = (Path(args.database_url.split("///", 1)[-1]).stat().st_size if db.is_sqlite else
                c.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())
    out["shape"] = {
        "units": n_units, "departments": n_dept, "communes": n_units - n_dept, "hosts": len(hosts),
        "hosts_per_unit": {"min": min(counts), "median": statistics.median(counts), "max": max(counts),
                           "units_with_1000_plus": sum(1 for c in counts if c >= 1000)},
        "internet_facing": len(exposed_hosts), "findings_by_kind": kinds,
        "findings_fixed_pct": round(100 * fixed / max(1, n_findings), 1), "database_mb": round(size / 2**20)}
    out["generate_peak_rss_mb"] = maxrss_mb()
    db.dispose()
    return out


# ---- measuring -----------------------------------------------------------------------------------

class StatementLog:
    """The SQL statements run while active (replayed afterwards to time the database's share: the execute
    call alone says little on SQLite, where rows are computed as they are fetched)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.active = False
        self.log: list[dict[str, Any]] = []
        event.listen(db.engine, "after_cursor_execute", self._after)

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.active and not executemany:
            self.log.append({"sql": statement, "params": parameters})

    def take(self) -> list[dict[str, Any]]:
        out, self.log = self.log, []
        return out


def replay(db: Database, statements: list[dict[str, Any]]) -> tuple[float, int]:
    """Run the statements again through the driver, fetching every row: the database's share of the time."""
    with db.engine.connect() as c:
        start = time.perf_counter()
        n = sum(len(c.exec_driver_sql(st["sql"], st["params"]).all()) for st in statements)
        return round(time.perf_counter() - start, 2), n


def explain(db: Database, statements: list[dict[str, Any]]) -> list[str]:
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
    with db.engine.connect() as c:
        try:
            rows = c.exec_driver_sql(prefix + statements[0]["sql"], statements[0]["params"]).all()
        except Exception as exc:  # a plan is a nicety, never a reason to fail the run
            return [f"(no plan: {exc.__class__.__name__})"]
    return [" | ".join(str(v) for v in r)[:300] for r in rows]  # long IN lists cut


def short_sql(sql: str) -> str:
    return " ".join(sql.split())[:160]


UNDER_TEST = ("collector/scoring/service.py", "collector/scoring/indicators.py", "collector/scoring/ranking.py",
              "collector/scoring/models.py", "collector/attestations/service.py", "rules/scoring/model.py",
              "rules/scoring/annual.py")


def code_version() -> dict[str, Any]:
    """Which code was measured: the commit, the schema revision and a hash of each file under test (the
    working tree may hold changes not committed yet)."""
    from collector.db import head_revision

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {"commit": head, "schema_revision": head_revision(),
            "sha256": {p: hashlib.sha256((ROOT / p).read_bytes()).hexdigest()[:16] for p in UNDER_TEST}}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"memory_start": phase_mem(), "day": DAY.isoformat(), "now": NOW.isoformat()}
    db = Database(args.database_url)
    t = time.perf_counter()
    db.upgrade()  # other work may have added migrations since the data was generated (or --reuse)
    out["upgrade_s"] = round(time.perf_counter() - t, 2)
    out["code"] = code_version()
    stmts = StatementLog(db)
    model = builtin_model()

    def phase(label: str, fn: Callable[[], Any], *, profile: bool = False) -> Any:
        gc.collect()
        reset_peak()
        prof = cProfile.Profile() if profile else None
        start = time.perf_counter()
        if prof:
            prof.enable()
        result = fn()
        wall = time.perf_counter() - start
        if prof:
            prof.disable()
            path = RESULTS / f"scoring-{args.backend}-profile-{label}.txt"
            path.write_text(profile_text(prof))
            out[f"{label}_profile_file"] = str(path.relative_to(ROOT))
        out[label] = {"wall_s": round(wall, 2), "memory": phase_mem(), "profiled": bool(prof)}
        print(f"  {label}: {out[label]['wall_s']} s  peak {out[label]['memory']['phase_peak_rss_mb']} MB"
              f"{'  (profiled)' if prof else ''}", flush=True)
        return result

    def compute() -> dict:
        with db.session() as s:
            return service.compute(s, day=DAY)

    results = phase("compute", compute, profile=args.profile)
    scores = [r.score(model) for r in results.values()]
    means: dict[str, float | None] = {}
    for ident in INDICATORS:
        values = [r.measures[ident].value for r in results.values() if r.measures[ident].value is not None]
        means[ident] = round(statistics.mean(values), 1) if values else None
    out["compute"]["units"] = len(results)
    out["compute"]["score"] = {"min": min(scores), "median": statistics.median(scores), "max": max(scores)}
    out["compute"]["indicator_means"] = means
    out["compute"]["units_with_value"] = {i: sum(1 for r in results.values() if r.measures[i].value is not None)
                                          for i in INDICATORS}
    del results

    # each indicator on its own, with the statements it ran
    gc.collect()
    reset_peak()
    breakdown: dict[str, Any] = {}
    with db.session() as s:
        window = indicators.Window.of(DAY)
        stmts.active = True
        t = time.perf_counter()
        hosts = indicators.hosts_at(s, model, window)
        breakdown["hosts_at"] = {"wall_s": round(time.perf_counter() - t, 2), "statements": stmts.take()}
        for ident, fn in indicators.MEASURED.items():
            t = time.perf_counter()
            fn(s, model, window, hosts)
            breakdown[ident] = {"wall_s": round(time.perf_counter() - t, 2), "statements": stmts.take()}
        unit_ids = list({h.unit_id for h in hosts.values()})
        t = time.perf_counter()
        attestations.values(s, unit_ids=unit_ids, period=DAY.year, reviewed_before=window.at)
        breakdown["attested"] = {"wall_s": round(time.perf_counter() - t, 2), "statements": stmts.take()}
        stmts.active = False
    out["breakdown_memory"] = phase_mem()
    print("  breakdown: " + ", ".join(f"{k} {v['wall_s']} s" for k, v in breakdown.items()), flush=True)
    plans: dict[str, Any] = {}
    for label, b in breakdown.items():
        groups: dict[str, list[dict[str, Any]]] = {}
        for st in b["statements"]:
            groups.setdefault(st["sql"], []).append(st)
        b["sql"] = []
        for sql, g in groups.items():
            sql_s, n_rows = replay(db, g)
            b["sql"].append({"sql": short_sql(sql), "runs": len(g), "sql_s": sql_s, "rows": n_rows})
            if sql_s >= 0.05:
                plans.setdefault(label, []).append({"sql": short_sql(sql), "plan": explain(db, g)})
        b["sql_s"] = round(sum(x["sql_s"] for x in b["sql"]), 2)
        b["python_s"] = round(max(0.0, b["wall_s"] - b["sql_s"]), 2)
        del b["statements"]
    out["breakdown"] = breakdown
    out["plans"] = plans

    def store() -> int:
        with db.transaction() as s:
            return service.store_day(s, day=DAY, now=NOW)

    out["store_day_rows"] = phase("store_day", store)

    with db.transaction() as s, immutable.suspended(s.connection()):  # --reuse: the earlier run froze it
        s.execute(delete(ScoreSnapshot).where(ScoreSnapshot.period == FREEZE_PERIOD))

    def freeze() -> int:
        with db.transaction() as s:
            return service.freeze_month(s, period=FREEZE_PERIOD, now=NOW)

    out["freeze_rows"] = phase("freeze_month", freeze)

    def annual() -> ranking.Ranking:
        with db.session() as s:
            return ranking.annual(s, year=PREV_YEAR, now=NOW)

    report = phase("ranking_annual", annual)
    out["ranking_annual"]["ranked"] = {g: sum(1 for r in members if r.rank) for g, members in report.groups.items()}
    blob = phase("to_xlsx", lambda: ranking.to_xlsx(report))
    out["to_xlsx"]["bytes"] = len(blob)
    (RESULTS / f"scoring-{args.backend}-{PREV_YEAR}.xlsx").write_bytes(blob)
    with db.session() as s:
        out["score_values_stored"] = s.execute(select(func.count()).select_from(service.ScoreValue)
                                               .where(service.ScoreValue.day == DAY)).scalar_one()
    if args.variants:
        out["variants"] = variants(db)
    db.dispose()
    return out


COVERING = {"A2": ("findings", "host_id, kind, finding_class, first_seen, fixed_at, due_at"),
            "A3": ("check_results", "host_id, valid_from, valid_to, status, critical")}


def variants(db: Database) -> dict[str, Any]:
    """Other shapes of the two heaviest statements (A2's aggregation over findings, A3's over check results),
    timed on the same data: as they are, without the index SQLite walks for the GROUP BY (SQLite only), and
    with a covering index (created for the run, then dropped)."""
    model = builtin_model()
    window = indicators.Window.of(DAY)
    stmts = StatementLog(db)
    with db.session() as s:
        hosts = indicators.hosts_at(s, model, window)
        stmts.active = True
        indicators.a2(s, model, window, hosts)
        a2 = stmts.take()[0]
        indicators.a3(s, model, window, hosts)
        a3 = stmts.take()[0]
        stmts.active = False

    def timed(sql: str, params: Any) -> dict[str, Any]:
        with db.engine.connect() as c:
            runs = []
            for _ in range(2):
                start = time.perf_counter()
                c.exec_driver_sql(sql, params).all()
                runs.append(round(time.perf_counter() - start, 2))
        return {"runs_s": runs, "plan": explain(db, [{"sql": sql, "params": params}])[:6]}

    out: dict[str, Any] = {}
    for ident, st in (("A2", a2), ("A3", a3)):
        table, cols = COVERING[ident]
        res = out[ident] = {"as_is": timed(st["sql"], st["params"])}
        if db.is_sqlite:
            res["not_indexed"] = timed(st["sql"].replace(f"FROM {table}", f"FROM {table} NOT INDEXED"), st["params"])
        with db.engine.begin() as c:
            start = time.perf_counter()
            c.exec_driver_sql(f"CREATE INDEX bench_covering ON {table} ({cols})")
            c.exec_driver_sql(f"ANALYZE {table}")
            built = round(time.perf_counter() - start, 1)
        try:
            res["covering_index"] = timed(st["sql"], st["params"]) | {"index": f"{table} ({cols})", "build_s": built}
        finally:
            with db.engine.begin() as c:
                c.exec_driver_sql("DROP INDEX bench_covering")
                c.exec_driver_sql(f"ANALYZE {table}")
        print(f"  variants {ident}: " + ", ".join(f"{k} {v['runs_s']}" for k, v in res.items()), flush=True)
    return out


def print_table(res: dict[str, Any]) -> None:
    g, m = res["generate"], res["measure"]
    sh, rows_, tm = g["shape"], g["rows"], g["timings_s"]
    b = m["breakdown"]
    rows = [
        ("backend", res["backend"]),
        ("units / hosts (internet-facing)", f"{sh['units']} ({sh['departments']} dept, {sh['communes']} communes) / "
                                            f"{sh['hosts']:,} ({sh['internet_facing']:,})"),
        ("hosts per unit", json.dumps(sh["hosts_per_unit"])),
        ("rows", ", ".join(f"{k} {v:,}" for k, v in rows_.items())),
        ("findings by kind / fixed", f"{json.dumps(sh['findings_by_kind'])} / {sh['findings_fixed_pct']} %"),
        ("database size (MB)", sh["database_mb"]),
        ("generate total (s)", f"{tm['total']}  (events {tm['events']}, findings {tm['findings']}, checks "
                               f"{tm['check_results']}, indexes {tm['recreate_indexes']}, analyze {tm['analyze']}; "
                               f"peak {g['generate_peak_rss_mb']} MB)"),
    ]
    c = m["compute"]
    rows.append(("compute(day) wall (s)", f"{c['wall_s']}{'  PROFILED' if c['profiled'] else ''}  "
                                          f"(goal < 30 s: {'met' if c['wall_s'] < 30 else 'MISSED'})"))
    rows.append(("compute peak RSS (MB)", f"phase {c['memory']['phase_peak_rss_mb']}, process max "
                                          f"{c['memory']['process_maxrss_mb']}"))
    rows.append(("scores min / median / max", f"{c['score']['min']} / {c['score']['median']} / {c['score']['max']}"))
    rows.append(("indicator means", json.dumps(c["indicator_means"])))
    for label, v in b.items():
        sql = "; ".join(f"{x['runs']}× {x['sql_s']} s → {x['rows']:,} rows" for x in v["sql"])
        rows.append((f"  {label} (s)", f"{v['wall_s']}  (SQL {v['sql_s']}, Python ~{v['python_s']}; {sql})"))
    rows.append(("breakdown peak RSS (MB)", m["breakdown_memory"]["phase_peak_rss_mb"]))
    for label in ("store_day", "freeze_month", "ranking_annual", "to_xlsx"):
        r = m[label]
        rows.append((f"{label} wall (s) / peak RSS (MB)", f"{r['wall_s']} / {r['memory']['phase_peak_rss_mb']}"))
    for ident, v in m.get("variants", {}).items():
        rows.append((f"{ident} statement variants (s, 2 runs)", ", ".join(f"{k} {x['runs_s']}" for k, x in v.items())))
    rows.append(("store_day rows / freeze rows / xlsx bytes",
                 f"{m['store_day_rows']} / {m['freeze_rows']} / {m['to_xlsx']['bytes']:,}"))
    print_rows(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--units", type=int, default=500)
    p.add_argument("--hosts", type=int, default=50_000)
    p.add_argument("--findings", type=int, default=2_000_000)
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--alerts", type=int, default=200_000)
    p.add_argument("--scan-assets", type=int, default=4000)
    p.add_argument("--exceptions", type=int, default=300)
    p.add_argument("--database-url", default=None)
    p.add_argument("--small", action="store_true", help="50 units, 5,000 hosts, 200,000 findings, 1,000,000 events")
    p.add_argument("--profile", action="store_true", help="cProfile the first compute (slows it down)")
    p.add_argument("--reuse", action="store_true", help="measure the database an earlier run generated")
    p.add_argument("--variants", action="store_true",
                   help="also time A2's and A3's main statement without the GROUP BY index and with a covering index")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--stage", choices=("all", "generate"), default="all", help=argparse.SUPPRESS)
    p.add_argument("--gen-out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--tag", default="", help="suffix of the results file name")
    args = p.parse_args()
    if args.small:
        args.units, args.hosts, args.findings, args.events = 50, 5000, 200_000, 1_000_000
        args.alerts, args.scan_assets, args.exceptions = 20_000, 400, 30
    if args.database_url is None:
        args.database_url = f"sqlite:///{tempfile.gettempdir()}/khien-bench-scoring.db"
    args.backend = ("sqlite" if args.database_url.startswith("sqlite") else "postgresql") + args.tag
    if args.stage == "generate":
        Path(args.gen_out).write_text(json.dumps(generate(args), default=str))
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    # what the database at this URL holds, for a --reuse run (with any --tag) to report
    from sqlalchemy.engine import make_url
    base = "sqlite" if args.database_url.startswith("sqlite") else "postgresql"
    gen_file = RESULTS / f"scoring-{base}-{Path(make_url(args.database_url).database or 'db').stem}-generate.json"
    if args.reuse:
        gen = json.loads(gen_file.read_text())
        print(f"reusing {args.database_url} (generated {gen['timings_s']['total']} s)", flush=True)
    else:
        fresh_database(args.database_url)
        print(f"generating {args.units} units, {args.hosts:,} hosts, {args.findings:,} findings, {args.events:,} "
              f"events into {args.database_url} ...", flush=True)
        cmd = [sys.executable, __file__, "--stage", "generate", "--gen-out", str(gen_file),
               *(x for k in ("units", "hosts", "findings", "events", "alerts", "scan_assets", "exceptions", "seed")
                 for x in (f"--{k.replace('_', '-')}", str(getattr(args, k)))),
               "--database-url", args.database_url]
        subprocess.run(cmd, check=True, cwd=ROOT)
        gen = json.loads(gen_file.read_text())
    print("measuring ...", flush=True)
    res = {"backend": args.backend, "args": {k: v for k, v in vars(args).items() if k not in ("stage", "gen_out")},
           "cpus": os.cpu_count(), "started": datetime.now(UTC).isoformat(), "generate": gen,
           "measure": measure(args)}
    path = RESULTS / f"scoring-{args.backend}.json"
    path.write_text(json.dumps(res, indent=1, default=str))
    print()
    print_table(res)
    print(f"\nwritten {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
