"""Vulnerability matching at fleet scale: 10,000 hosts × ~1,500 packages against a 100,000-record feed.

Usage:
    .venv/bin/python bench/match.py [--hosts 10000] [--packages 1500] [--records 100000]
                                    [--database-url URL] [--small] [--profile] [--seed 1]

Without --database-url a fresh SQLite file under /tmp is used. A PostgreSQL URL names a database that
is dropped and created fresh (``postgresql+psycopg://postgres@127.0.0.1:5432/khien_bench_match``).

Two processes: a child generates the data (units, hosts, inventory rows with bulk driver-level inserts —
executemany on SQLite, COPY on PostgreSQL — and the feed, built as ``ParsedFeed`` objects in memory and
stored with ``import_feed``); the parent then measures index build, the first full match, the nightly
re-match with nothing changed, and incremental re-matching of one changed host, so the peak memory it
reports belongs to matching, not to data generation. Results: a table on stdout and
``bench/results/match-<backend>.json``; ``--profile`` adds a cProfile of the first full match.

Goal (issue): full match of 10,000 hosts under 60 s on a 2-core machine, one changed host under 100 ms.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text, update

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import fresh_database, maxrss_mb, phase_mem, print_rows, profile_text, reset_peak  # noqa: E402
from collector.db import Database  # noqa: E402
from collector.findings.models import Finding  # noqa: E402
from collector.hosts.models import Host, InventoryRow  # noqa: E402
from collector.units import service as units  # noqa: E402
from collector.units.models import UnitCreate  # noqa: E402
from collector.vulns import matching  # noqa: E402
from collector.vulns import service as feeds  # noqa: E402
from rules.feeds.model import Affected, KnownExploited, ParsedFeed, Vulnerability  # noqa: E402
from rules.versions import version_key  # noqa: E402

RESULTS = ROOT / "bench" / "results"
RELEASES = (("debian:12", 0.7), ("debian:11", 0.2), ("ubuntu:22.04", 0.1))
BASE_TIME = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
WORDS = ("lib", "python3", "perl", "gnome", "x11", "kde", "net", "core", "util", "font", "gtk", "qt", "ssl", "xml",
         "zlib", "curl", "glib", "dbus", "systemd", "apt", "gcc", "llvm", "ruby", "node", "php", "mysql", "pg",
         "nginx", "apache2", "openssh", "bind9", "samba", "cups", "krb5", "ldap", "sasl", "gnutls", "nss", "icu")
CVSS_METRICS = (("AV", "NALP"), ("AC", "LH"), ("PR", "NLH"), ("UI", "NR"), ("S", "UC"), ("C", "HLN"),
                ("I", "HLN"), ("A", "HLN"))
URGENCIES = ("low", "medium", "high", "not yet assigned", "unimportant", None)
INSERT_CHUNK = 10_000


# ---- the synthetic universe ----------------------------------------------------------------------

class Universe:
    """Source packages, their binaries, and per release the 1–3 version variants found in the fleet."""

    def __init__(self, rng: random.Random, n_sources: int = 6000) -> None:
        self.sources: list[str] = []
        self.binaries: dict[str, list[str]] = {}
        seen: set[str] = set()
        for i in range(n_sources):
            name = f"{rng.choice(WORDS)}{rng.choice(WORDS)}-{i}" if rng.random() < 0.5 else f"{rng.choice(WORDS)}{i}"
            if name in seen:
                name = f"{name}x"
            seen.add(name)
            self.sources.append(name)
            n = rng.choices((1, 2, 3, 4), (60, 25, 10, 5))[0]
            self.binaries[name] = [name, f"lib{name}{rng.randint(0, 9)}", f"{name}-common", f"{name}-utils"][:n]
        # variants[(release, source)] = (versions oldest→newest, a version below all, the next update above all)
        self.variants: dict[tuple[str, str], tuple[list[str], str, str]] = {}
        self.binnmu: set[tuple[str, str]] = set()  # (release, binary) carrying a +b1 binNMU
        for src in self.sources:
            a, b, c = rng.randint(1, 9), rng.randint(0, 30), rng.randint(0, 20)
            epoch = rng.choices(("", "1:", "2:"), (93, 5, 2))[0]
            rev = rng.randint(1, 6)
            tilde = rng.random() < 0.1
            for release, _share in RELEASES:
                n = rng.choices((1, 2, 3), (40, 35, 25))[0]
                up = f"{a}.{b}.{c}" if release != "debian:11" else f"{a}.{max(b - 2, 0)}.{c}"
                base = f"{epoch}{up}-{rev}"
                below = f"{epoch}{a - 1}.{rng.randint(0, 9)}-1"
                if release.startswith("ubuntu"):
                    u0 = rng.randint(0, 3)
                    us = [u0 + i * rng.randint(1, 2) for i in range(n)]
                    vers = [f"{base}build1" if u == 0 else f"{base}ubuntu0.22.04.{u}" for u in us]
                    nxt = f"{base}ubuntu0.22.04.{us[-1] + 1}"
                else:
                    tag = "deb12u" if release == "debian:12" else "deb11u"
                    if tilde:  # a new upstream backported to stable: 1.2.3.1-1~deb12u1
                        vers = [f"{epoch}{up}.{i + 1}-1~{tag}1" for i in range(n)]
                        nxt = f"{epoch}{up}.{n + 1}-1~{tag}1"
                    else:
                        u0 = rng.randint(0, 3)
                        us = [u0 + i * rng.randint(1, 2) for i in range(n)]
                        vers = [base if u == 0 else f"{base}+{tag}{u}" for u in us]
                        nxt = f"{base}+{tag}{us[-1] + 1}"
                    for binary in self.binaries[src]:
                        if binary != src and rng.random() < 0.08:
                            self.binnmu.add((release, binary))
                self.variants[(release, src)] = (vers, below, nxt)

    def n_binaries(self) -> int:
        return sum(len(v) for v in self.binaries.values())


# ---- the feed ------------------------------------------------------------------------------------

def cvss_vector(rng: random.Random) -> str:
    return "CVSS:3.1/" + "/".join(f"{m}:{rng.choice(vals)}" for m, vals in CVSS_METRICS)


def build_feed(rng: random.Random, uni: Universe, n_records: int) -> tuple[ParsedFeed, ParsedFeed]:
    """A Debian-tracker-like feed (debian:11/12 and ubuntu:22.04 entries, keyed by source) plus a KEV list."""
    others = [f"{rng.choice(WORDS)}-other{i}" for i in range(20_000)]  # packages nobody has installed
    vulns: list[Vulnerability] = []
    for i in range(n_records):
        year = rng.randint(2005, 2026)
        cve = f"CVE-{year}-{10000 + i}"
        n_pkgs = rng.choices((1, 2, 3), (90, 7, 3))[0]
        affected: list[Affected] = []
        for _ in range(n_pkgs):
            installed = rng.random() < 0.45
            pkg = rng.choice(uni.sources) if installed else rng.choice(others)
            for release, _share in RELEASES:
                if rng.random() > (0.6 if release.startswith("ubuntu") else 0.9):
                    continue
                urgency = rng.choice(URGENCIES)
                r = rng.random()
                fixed: str | None = None
                if r < 0.03:
                    status = "not-affected"
                elif r < 0.09:
                    status = "unimportant"
                elif r < 0.0925:
                    status = "no-dsa"
                elif r < 0.0935:
                    status = "postponed"
                elif r < 0.095:
                    status = "open"
                else:
                    status = "fixed"
                    if installed:
                        vers, below, nxt = uni.variants[(release, pkg)]
                        q = rng.random()
                        if q < 0.003:
                            fixed = nxt  # the fix is out, nobody installed it yet
                        elif q < 0.010 and len(vers) > 1:
                            fixed = vers[rng.randint(1, len(vers) - 1)]  # hosts on older variants miss it
                        else:
                            fixed = below  # long fixed
                    else:
                        fixed = f"{rng.randint(1, 9)}.{rng.randint(0, 9)}-{rng.randint(1, 4)}+deb12u1"
                affected.append(Affected(distro=release, ecosystem="deb", package=pkg, introduced=None, fixed=fixed,
                                         last_affected=None, status=status, urgency=urgency))
        vectors = (cvss_vector(rng),) if rng.random() < 0.2 else ()
        summary = f"{affected[0].package if affected else 'x'}: issue {i} allows remote attackers to cause a denial " \
                  f"of service or possibly execute arbitrary code via crafted input"
        vulns.append(Vulnerability(id=cve, aliases=(), summary=summary, published=None, modified=None,
                                   cvss_vectors=vectors, severity=rng.choice(URGENCIES), affected=tuple(affected),
                                   references=()))
    tracker = ParsedFeed(kind="debian-tracker", source="bench-tracker", version="1", vulnerabilities=tuple(vulns))
    kev_cves = rng.sample([v.id for v in vulns], min(1000, len(vulns)))
    kev = ParsedFeed(kind="kev", source="bench-kev", version="1", known_exploited=tuple(
        KnownExploited(cve=c, vendor="v", product="p", name="n", date_added=date(2026, 1, 1) + timedelta(days=i % 300),
                       due_date=None, ransomware=None, description="d") for i, c in enumerate(kev_cves)))
    return tracker, kev


# ---- the fleet -----------------------------------------------------------------------------------

def _fmt_sqlite(dt: datetime) -> str:
    return dt.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def row_tail(release: str, binary: str, source: str, source_version: str, uni: Universe) -> tuple:
    version = source_version + "+b1" if (release, binary) in uni.binnmu else source_version
    data = {"name": binary, "version": version, "arch": "amd64", "source": source, "source_version": source_version,
            "manager": "dpkg"}
    text_ = json.dumps(data, separators=(",", ":"))
    return (f"{binary}/amd64", binary, version, source, source_version, hashlib.sha256(text_.encode()).hexdigest(),
            text_)


class Writer:
    """Driver-level bulk insert of inventory rows: executemany on SQLite, COPY on PostgreSQL."""

    COLS = ("host_id", "unit_id", "section", "key", "name", "version", "source", "source_version", "row_hash",
            "data", "valid_from")

    def __init__(self, db: Database) -> None:
        self.db = db
        self.raw = db.engine.raw_connection()
        self.buf: list[tuple] = []
        self.total = 0

    def add(self, row: tuple) -> None:
        self.buf.append(row)
        if len(self.buf) >= 100_000:
            self.flush()

    def flush(self) -> None:
        if not self.buf:
            return
        cur = self.raw.cursor()
        if self.db.is_sqlite:
            sql = f"INSERT INTO inventory_rows ({', '.join(self.COLS)}) VALUES ({', '.join('?' * len(self.COLS))})"
            cur.executemany(sql, self.buf)
        else:
            with cur.copy(f"COPY inventory_rows ({', '.join(self.COLS)}) FROM STDIN") as copy:
                for r in self.buf:
                    copy.write_row(r)
        self.raw.commit()
        self.total += len(self.buf)
        self.buf.clear()

    def close(self) -> None:
        self.flush()
        self.raw.close()


def drop_inventory_indexes(db: Database) -> list[str]:
    """Drop the secondary indexes of inventory_rows for the bulk load; returns the DDL that recreates them."""
    with db.engine.begin() as c:
        if db.is_sqlite:
            rows = c.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                                     "tbl_name = 'inventory_rows' AND sql IS NOT NULL").all()
        else:
            rows = c.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'inventory_rows' "
                                  "AND indexname NOT LIKE '%pkey'")).all()
        for name, _ddl in rows:
            c.exec_driver_sql(f'DROP INDEX "{name}"')
    return [ddl for _name, ddl in rows]


def generate(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    db = Database(args.database_url)
    db.upgrade()
    uni = Universe(rng)
    with db.transaction() as s:
        units.create(s, data=UnitCreate(code="P1", name="Province", kind="province"))
        unit_ids = [units.create(s, data=UnitCreate(code=f"D{i}", name=f"Dept {i}", kind="department",
                                                    parent_code="P1")).id for i in range(10)]
    # the core everyone has: whole sources until ~2/3 of the package count
    order = list(uni.sources)
    rng.shuffle(order)
    core: list[tuple[str, str]] = []
    k = 0
    while len(core) < args.packages * 2 // 3:
        core += [(order[k], b) for b in uni.binaries[order[k]]]
        k += 1
    rest = [(src, b) for src in order[k:] for b in uni.binaries[src]]
    hosts: list[dict[str, Any]] = []
    releases = [r for r, _ in RELEASES]
    shares = [w for _, w in RELEASES]
    for h in range(args.hosts):
        hosts.append({"unit_id": unit_ids[h % len(unit_ids)], "machine_id": f"{h:032x}", "hostname": f"host{h:05d}",
                      "macs": [], "inventory_hashes": {}, "distro": rng.choices(releases, shares)[0],
                      "platform": "linux", "security_level": rng.randint(1, 5), "internet_facing": rng.random() < 0.1,
                      "first_seen": BASE_TIME, "last_seen": BASE_TIME})
    with db.transaction() as s:
        for i in range(0, len(hosts), INSERT_CHUNK):
            s.execute(insert(Host), hosts[i:i + INSERT_CHUNK])
        host_ids = [r[0] for r in s.execute(select(Host.id).order_by(Host.id))]
    index_ddl = drop_inventory_indexes(db)
    writer = Writer(db)
    valid_from = _fmt_sqlite(BASE_TIME) if db.is_sqlite else BASE_TIME
    tails: dict[tuple[str, str, str], tuple] = {}
    distinct: set[tuple[str, str, str]] = set()
    for hid, host in zip(host_ids, hosts, strict=True):
        release = host["distro"]
        lag = rng.choices((0, 1, 2), (50, 30, 20))[0]
        n_varied = max(0, int(args.packages * rng.uniform(0.9, 1.1)) - len(core))
        chosen = core + rng.sample(rest, min(n_varied, len(rest)))
        picks: dict[str, str] = {}
        head = (hid, host["unit_id"], "packages")
        for src, binary in chosen:
            sv = picks.get(src)
            if sv is None:
                vers = uni.variants[(release, src)][0]
                back = lag if rng.random() < 0.7 else rng.randint(0, lag)
                sv = picks[src] = vers[max(0, len(vers) - 1 - back)]
            key = (release, binary, sv)
            tail = tails.get(key)
            if tail is None:
                tail = tails[key] = row_tail(release, binary, src, sv, uni)
                distinct.add((release, binary, tail[2]))
            writer.add(head + tail + (valid_from,))
    writer.close()
    t_idx = time.perf_counter()
    with db.engine.begin() as c:
        for ddl in index_ddl:
            c.exec_driver_sql(ddl)
    out["recreate_inventory_indexes_s"] = round(time.perf_counter() - t_idx, 1)
    out["generate_inventory_s"] = round(time.perf_counter() - t0, 1)
    t1 = time.perf_counter()
    tracker, kev = build_feed(rng, uni, args.records)
    out["generate_feed_s"] = round(time.perf_counter() - t1, 1)
    t2 = time.perf_counter()
    with db.transaction() as s:
        feeds.import_feed(s, parsed=tracker, sha256="a" * 64, filename="bench-tracker.json", now=BASE_TIME)
        feeds.import_feed(s, parsed=kev, sha256="b" * 64, filename="bench-kev.csv", now=BASE_TIME)
    out["feed_import_s"] = round(time.perf_counter() - t2, 1)
    t3 = time.perf_counter()
    if db.is_sqlite:
        with db.engine.connect() as c:
            c.exec_driver_sql("ANALYZE")
    else:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    out["analyze_s"] = round(time.perf_counter() - t3, 1)
    out["shape"] = {
        "hosts": len(host_ids), "source_packages": len(uni.sources), "binary_packages": uni.n_binaries(),
        "core_binaries": len(core), "package_rows": writer.total,
        "packages_per_host": round(writer.total / max(1, len(host_ids)), 1),
        "distinct_package_versions": len(distinct),
        "hosts_by_release": {r: sum(1 for h in hosts if h["distro"] == r) for r in releases},
        "feed_records": len(tracker.vulnerabilities),
        "affected_entries": sum(len(v.affected) for v in tracker.vulnerabilities),
        "kev": len(kev.known_exploited)}
    out["generate_peak_rss_mb"] = maxrss_mb()
    db.dispose()
    return out


# ---- measuring -----------------------------------------------------------------------------------

def change_one_host(db: Database, host_id: int, now: datetime, n: int = 5) -> int:
    """Upgrade ``n`` vulnerable source packages of a host to their fixed version; returns how many changed."""
    with db.transaction() as s:
        host = s.get(Host, host_id)
        rows = s.execute(select(Finding.location, Finding.fixed_version).where(
            Finding.host_id == host_id, Finding.kind == "vulnerability", Finding.status.in_(("open", "reopened")),
            Finding.distro_state == "fixed", Finding.fixed_version.is_not(None))).all()
        target: dict[str, str] = {}
        for loc, fixed in rows:
            if loc not in target or version_key("deb", fixed) > version_key("deb", target[loc]):
                target[loc] = fixed
        chosen = sorted(target)[:n]
        if not chosen:
            return 0
        current = s.execute(select(InventoryRow).where(
            InventoryRow.host_id == host_id, InventoryRow.section == "packages", InventoryRow.valid_to.is_(None),
            InventoryRow.source.in_(chosen))).scalars().all()
        s.execute(update(InventoryRow).where(InventoryRow.id.in_([r.id for r in current])).values(valid_to=now))
        new = []
        for r in current:
            sv = target[r.source]
            data = dict(r.data) | {"version": sv, "source_version": sv}
            new.append({"host_id": host_id, "unit_id": host.unit_id, "section": "packages", "key": r.key,
                        "name": r.name, "version": sv, "source": r.source, "source_version": sv,
                        "row_hash": hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest(),
                        "data": data, "valid_from": now})
        s.execute(insert(InventoryRow), new)
        return len(chosen)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))], 1)


def measure(args: argparse.Namespace, gen: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"memory_start": phase_mem()}
    db = Database(args.database_url)
    reset_peak()
    t = time.perf_counter()
    with db.session() as s:
        index = matching.load_index(s)
    out["index_build_s"] = round(time.perf_counter() - t, 2)
    out["index"] = {"packages": len(index.by_package), "entries": sum(len(v) for v in index.by_package.values())}
    out["memory_index"] = phase_mem()

    def full(label: str, now: datetime, profile: bool) -> None:
        gc.collect()
        reset_peak()
        prof = cProfile.Profile() if profile else None
        progress: list[tuple[float, str]] = []
        start = time.perf_counter()

        def say(msg: str) -> None:
            progress.append((round(time.perf_counter() - start, 2), msg))

        # What the nightly job and `khien feeds import` run: judged outside a write transaction,
        # reconciled and committed 1,000 hosts at a time.
        if prof:
            prof.enable()
        rep = matching.match_all(db, now=now, on_progress=say)
        done = commit_done = time.perf_counter()
        if prof:
            prof.disable()
            path = RESULTS / f"match-{args.backend}-profile-{label}.txt"
            path.write_text(profile_text(prof))
            out[f"{label}_profile_file"] = str(path.relative_to(ROOT))
        out[label] = {"wall_s": round(commit_done - start, 2), "match_s": round(done - start, 2),
                      "report": rep.as_dict(), "progress": progress, "memory": phase_mem(), "profiled": bool(prof)}
        print(f"  {label}: {out[label]['wall_s']} s  findings={rep.findings}  peak={out[label]['memory']}", flush=True)

    now1 = BASE_TIME + timedelta(days=1)
    full("full_first", now1, args.profile)
    with db.session() as s:
        out["findings_stored"] = s.execute(select(func.count()).select_from(Finding)).scalar_one()
        per_host = s.execute(select(Finding.host_id, func.count()).group_by(Finding.host_id)).all()
    counts = sorted(c for _, c in per_host) or [0]
    out["findings_per_host"] = {"min": counts[0], "median": statistics.median(counts), "max": counts[-1],
                                "hosts_with_findings": len(per_host)}
    now2 = now1 + timedelta(days=1)
    full("full_nightly", now2, False)

    # incremental: one changed host at a time
    with db.session() as s:
        candidates = [r[0] for r in s.execute(select(Finding.host_id).where(
            Finding.status == "open", Finding.distro_state == "fixed").distinct())]
    rng = random.Random(args.seed + 1)
    sample = rng.sample(candidates, min(20, len(candidates)))
    match_ms: list[float] = []
    commit_ms: list[float] = []
    fixed: list[int] = []
    changed_pkgs: list[int] = []
    reset_peak()
    for i, hid in enumerate(sample):
        now = now2 + timedelta(hours=1, minutes=i)
        changed_pkgs.append(change_one_host(db, hid, now))
        start = time.perf_counter()
        with db.transaction() as s:
            rep = matching.match(s, now=now, host_ids=[hid])
            done = time.perf_counter()
        end = time.perf_counter()
        match_ms.append((done - start) * 1000)
        commit_ms.append((end - start) * 1000)
        fixed.append(rep.findings.get("fixed", 0))
    out["incremental"] = {
        "repetitions": len(sample), "median_ms": round(statistics.median(match_ms), 1), "p95_ms": pct(match_ms, 95),
        "max_ms": round(max(match_ms), 1), "median_ms_with_commit": round(statistics.median(commit_ms), 1),
        "p95_ms_with_commit": pct(commit_ms, 95), "packages_upgraded": changed_pkgs, "findings_fixed": fixed,
        "all_fixed_gt_0": all(f > 0 for f in fixed), "memory": phase_mem()}
    # one host with nothing changed, for comparison
    hid = sample[0]
    times = []
    for i in range(5):
        start = time.perf_counter()
        with db.transaction() as s:
            matching.match(s, now=now2 + timedelta(hours=2, minutes=i), host_ids=[hid])
        times.append((time.perf_counter() - start) * 1000)
    out["incremental_unchanged_median_ms"] = round(statistics.median(times), 1)
    db.dispose()
    return out


def print_table(res: dict[str, Any]) -> None:
    g, m = res["generate"], res["measure"]
    sh = g["shape"]
    rows = [
        ("backend", res["backend"]),
        ("hosts / package rows", f"{sh['hosts']:,} / {sh['package_rows']:,} ({sh['packages_per_host']}/host)"),
        ("sources / binaries / distinct (release,pkg,version)",
         f"{sh['source_packages']:,} / {sh['binary_packages']:,} / {sh['distinct_package_versions']:,}"),
        ("feed records / affected entries / KEV",
         f"{sh['feed_records']:,} / {sh['affected_entries']:,} / {sh['kev']:,}"),
        ("generate inventory / feed objects (s)", f"{g['generate_inventory_s']} / {g['generate_feed_s']}"),
        ("feed import (s)", g["feed_import_s"]),
        ("index build (s)", f"{m['index_build_s']}  ({m['index']['entries']:,} entries, peak "
                            f"{m['memory_index']['phase_peak_rss_mb']} MB)"),
    ]
    for label in ("full_first", "full_nightly"):
        r = m[label]
        note = ", PROFILED" if r["profiled"] else ""
        rows.append((f"{label} wall (s)", f"{r['wall_s']}  (match {r['match_s']}{note})"))
        rows.append((f"{label} findings", json.dumps(r["report"]["findings"])))
        rows.append((f"{label} peak RSS (MB)", f"phase {r['memory']['phase_peak_rss_mb']}, process max "
                                               f"{r['memory']['process_maxrss_mb']}"))
    rows.append(("findings stored / per host", f"{m['findings_stored']:,} / {m['findings_per_host']}"))
    inc = m["incremental"]
    rows.append(("incremental 1 host median / p95 (ms)", f"{inc['median_ms']} / {inc['p95_ms']} (with commit "
                 f"{inc['median_ms_with_commit']} / {inc['p95_ms_with_commit']})"))
    rows.append(("incremental findings fixed", f"{inc['findings_fixed']} all>0={inc['all_fixed_gt_0']}"))
    rows.append(("1 host unchanged median (ms)", m["incremental_unchanged_median_ms"]))
    print_rows(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hosts", type=int, default=10_000)
    p.add_argument("--packages", type=int, default=1500)
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--database-url", default=None)
    p.add_argument("--small", action="store_true", help="500 hosts, 20,000 records")
    p.add_argument("--profile", action="store_true", help="cProfile the first full match (slows it down)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--stage", choices=("all", "generate"), default="all", help=argparse.SUPPRESS)
    p.add_argument("--gen-out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--tag", default="", help="suffix of the results file name")
    args = p.parse_args()
    if args.small:
        args.hosts, args.records = 500, 20_000
    if args.database_url is None:
        args.database_url = f"sqlite:///{tempfile.gettempdir()}/khien-bench-match.db"
    args.backend = ("sqlite" if args.database_url.startswith("sqlite") else "postgresql") + args.tag
    if args.stage == "generate":
        Path(args.gen_out).write_text(json.dumps(generate(args), default=str))
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    fresh_database(args.database_url)
    print(f"generating {args.hosts} hosts × ~{args.packages} packages, {args.records} feed records "
          f"into {args.database_url} ...", flush=True)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        gen_out = f.name
    cmd = [sys.executable, __file__, "--stage", "generate", "--gen-out", gen_out, "--hosts", str(args.hosts),
           "--packages", str(args.packages), "--records", str(args.records), "--database-url", args.database_url,
           "--seed", str(args.seed)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    gen = json.loads(Path(gen_out).read_text())
    os.unlink(gen_out)
    print(json.dumps(gen, indent=1), flush=True)
    print("measuring ...", flush=True)
    res = {"backend": args.backend, "args": {k: v for k, v in vars(args).items() if k not in ("stage", "gen_out")},
           "cpus": os.cpu_count(), "started": datetime.now(UTC).isoformat(), "generate": gen,
           "measure": measure(args, gen)}
    path = RESULTS / f"match-{args.backend}.json"
    path.write_text(json.dumps(res, indent=1, default=str))
    print()
    print_table(res)
    print(f"\nwritten {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
