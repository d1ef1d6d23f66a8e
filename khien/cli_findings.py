"""``khien`` commands for findings: feeds import and matching, network scans, unit ranges, listing findings."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from khien.cli_common import UsageError, database

PROGRESS_EVERY_S = 2.0


class Progress:
    """Progress lines on stderr, at most every couple of seconds (and always the last one)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.last = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        final = total is not None and done >= total
        if now - self.last < PROGRESS_EVERY_S and not final:
            return
        self.last = now
        of = f"/{total}" if total else ""
        pct = f" ({100 * done / total:.0f} %)" if total else ""
        print(f"{self.label}: {done}{of} records{pct}", file=sys.stderr, flush=True)


def file_hash(path: Path) -> str:
    """sha256 of a file, or of a directory's files (relative names and contents, in sorted order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


# --- feeds ----------------------------------------------------------------------------------------

def cmd_feeds_import(args: argparse.Namespace) -> int:
    from collector.types import utcnow
    from collector.vulns import matching
    from collector.vulns import service as feeds
    from rules.feeds import FeedError, parse_feed

    parsed = []
    for raw in args.paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
        try:
            feed = parse_feed(path, kind=args.kind, on_progress=Progress(f"parsing {path.name}"))
        except FeedError as exc:
            print(f"khien: error: {exc}", file=sys.stderr)
            print("khien: nothing imported", file=sys.stderr)
            return 1
        parsed.append((path, feed, file_hash(path)))
    db = database(args)
    with db.transaction() as session:  # all files or none
        outcomes = [(path, feeds.import_feed(session, parsed=feed, sha256=digest, filename=path.name, now=utcnow(),
                                             by=args.by, on_progress=Progress(f"storing {path.name}")))
                    for path, feed, digest in parsed]
    changed = False
    for path, outcome in outcomes:
        f = outcome.feed
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(f.skipped.items()))
        extra = f" (replaces feed {outcome.replaced.id}, version {outcome.replaced.version or '-'})" \
            if outcome.replaced else ""
        print(f"{path}: {outcome.status} — feed {f.id} {f.kind} {f.source} version {f.version or '-'}, "
              f"{f.records} records, sha256 {f.sha256[:16]}…{extra}" + (f"; skipped: {skipped}" if skipped else ""))
        changed |= outcome.status != "unchanged"
    if changed and not args.no_match:
        report = matching.match_all(db, now=utcnow(), on_progress=lambda m: print(m, file=sys.stderr))
        _print_match(report)
    return 0


def cmd_feeds_list(args: argparse.Namespace) -> None:
    from collector.vulns import service as feeds

    with database(args).session() as session:
        rows = feeds.list_feeds(session, include_replaced=args.all)
    print(f"{'ID':>4} {'KIND':<15} {'SOURCE':<28} {'VERSION':<22} {'RECORDS':>8} {'IMPORTED':<17} STATE")
    for f in rows:
        state = f"replaced {f.replaced_at:%Y-%m-%d}" if f.replaced_at else "current"
        print(f"{f.id:>4} {f.kind:<15} {f.source[:28]:<28} {(f.version or '-')[:22]:<22} {f.records:>8} "
              f"{f.imported_at:%Y-%m-%d %H:%M} {state}")


def cmd_findings_match(args: argparse.Namespace) -> None:
    from collector.types import utcnow
    from collector.vulns import matching

    db = database(args)
    say = lambda m: print(m, file=sys.stderr)  # noqa: E731
    if args.host:
        with db.transaction() as session:
            report = matching.match(session, now=utcnow(), host_ids=args.host, on_progress=say)
    else:
        report = matching.match_all(db, now=utcnow(), on_progress=say)
    _print_match(report)


def _print_match(report) -> None:
    f = report.findings
    print(f"matched {report.hosts} hosts in {report.seconds:.2f} s: {report.package_versions} distinct package "
          f"versions, {report.vulnerable_packages} vulnerable packages, {report.no_fix} without a fix, "
          f"{report.not_affected} not-affected/unimportant, {report.invalid_versions} unparsable versions; "
          f"findings opened {f.get('opened', 0)}, reopened {f.get('reopened', 0)}, fixed {f.get('fixed', 0)}, "
          f"reclassified {f.get('reclassified', 0)}")


# --- findings -------------------------------------------------------------------------------------

def cmd_findings_list(args: argparse.Namespace) -> None:
    from collector.findings import service as findings
    from collector.scope import Scope
    from collector.types import utcnow
    from collector.units import service as units

    now = utcnow()
    with database(args).session() as session:
        unit_ids = None
        if args.unit:
            unit_ids = units.subtree_ids(session, unit_id=units.get_by_code(session, code=args.unit).id)
        filters = findings.FindingFilter(unit_ids=unit_ids, host_id=args.host, kind=args.kind,
                                         finding_class=args.finding_class, status=args.status,
                                         overdue=True if args.overdue else None)
        items = findings.list_(session, scope=Scope.everything(), filters=filters, now=now, limit=args.limit)
    if args.format == "json":
        print(json.dumps([i.model_dump(mode="json") for i in items], ensure_ascii=False, indent=2))
        return
    print(f"{'ID':>6} {'CLASS':<18} {'STATUS':<9} {'DUE':<10} {'HOST':<20} {'RULE':<26} {'LOCATION':<24} TITLE")
    for i in items:
        due = f"{i.due_at:%Y-%m-%d}" + ("!" if i.overdue else "")
        where = (i.hostname or i.address or "-")[:20]
        print(f"{i.id:>6} {i.finding_class:<18} {i.status:<9} {due:<10} {where:<20} {i.rule[:26]:<26} "
              f"{i.location[:24]:<24} {i.title[:70]}")


# --- units: ranges and scan policy ----------------------------------------------------------------

def cmd_unit_ranges(args: argparse.Namespace) -> None:
    from collector.scans import service as scans

    with database(args).transaction() as session:
        rows = scans.set_ranges(session, code=args.code, add=args.add, remove=args.remove, exclude=args.exclude,
                                include=args.include)
    if not rows:
        print(f"unit {args.code}: no ranges")
    for r in rows:
        print(f"{'exclude' if r.exclude else 'range'} {r.network}")


def cmd_unit_scan_policy(args: argparse.Namespace) -> None:
    from collector.scans import service as scans

    enabled = None if args.enable is None else args.enable == "yes"
    with database(args).transaction() as session:
        policy = scans.set_policy(session, code=args.code, profile=args.profile, windows=args.window,
                                  enabled=enabled)
        windows = ", ".join(f"{s:02d}-{e:02d}" for s, e in policy.windows) or "any time"
        print(f"unit {args.code}: scans {'enabled' if policy.enabled else 'disabled'}, profile {policy.profile}, "
              f"windows {windows} (Asia/Ho_Chi_Minh)")


# --- scan -----------------------------------------------------------------------------------------

def cmd_scan(args: argparse.Namespace) -> int:
    from sqlmodel import select

    from collector.scans import runner
    from collector.scans.models import ScanHost, ScanPort

    db = database(args)

    def progress(p: runner.Progress) -> None:
        print(f"scan: {p.percent:5.1f} % — {p.message}", file=sys.stderr, flush=True)

    run = runner.run(db, unit_code=args.unit, targets=args.targets or None, profile=args.profile, trigger="cli",
                     max_addresses=args.max_addresses, ports=args.ports, on_progress=progress)
    with db.session() as session:
        hosts = session.exec(select(ScanHost).where(ScanHost.run_id == run.id).order_by(ScanHost.id)).all()
        ports = session.exec(select(ScanPort).where(ScanPort.run_id == run.id).order_by(ScanPort.id)).all()
    by_host: dict[int, list] = {}
    for p in ports:
        by_host.setdefault(p.scan_host_id, []).append(p)
    if args.format == "json":
        print(json.dumps({"run": run.model_dump(mode="json"), "hosts": [
            h.model_dump(mode="json", exclude={"id", "run_id"}) | {
                "ports": [p.model_dump(mode="json", exclude={"id", "run_id", "scan_host_id"})
                          for p in by_host.get(h.id, [])]} for h in hosts]}, ensure_ascii=False, indent=2))
    else:
        _print_scan(run, hosts, by_host)
    if run.status != "completed":
        print(f"khien: scan {run.status}: {run.error}", file=sys.stderr)
        return 1
    return 0


def _print_scan(run, hosts, by_host: dict[int, list]) -> None:
    print(f"scan run {run.id}: {run.status}, profile {run.profile}, {run.addresses} addresses, {run.hosts_up} up, "
          f"nmap {run.nmap_seconds:.1f} s")
    for h in hosts:
        if h.state != "up":
            continue
        managed = f"host {h.host_id}" if h.host_id else "UNMANAGED"
        print(f"  {h.address} ({managed})")
        for p in by_host.get(h.id, []):
            what = " ".join(x for x in (p.service, p.product, p.version) if x)
            print(f"    {p.proto}/{p.port:<6} {p.state:<10} {what}")
    f = run.findings
    print(f"findings: opened {f.get('opened', 0)}, reopened {f.get('reopened', 0)}, fixed {f.get('fixed', 0)}")


def register(sub, command: Callable, unit_parser) -> None:
    """Add these commands to the ``khien`` parser (``command`` adds database options)."""
    p = command("ranges", cmd_unit_ranges, "network ranges the unit owns (scans are refused outside them)",
                unit_parser)
    p.add_argument("code")
    p.add_argument("--add", nargs="+", default=[], metavar="CIDR")
    p.add_argument("--remove", nargs="+", default=[], metavar="CIDR")
    p.add_argument("--exclude", nargs="+", default=[], metavar="CIDR", help="never scan these, inside the ranges")
    p.add_argument("--include", nargs="+", default=[], metavar="CIDR", help="drop an exclusion")
    p = command("scan-policy", cmd_unit_scan_policy, "when and how the scheduler scans the unit's ranges",
                unit_parser)
    p.add_argument("code")
    p.add_argument("--profile", choices=["discovery", "standard", "full"])
    p.add_argument("--window", nargs="+", metavar="HH-HH", help="hours scanning is allowed, local time, e.g. 22-06")
    p.add_argument("--enable", choices=["yes", "no"])

    feeds = sub.add_parser("feeds", help="offline vulnerability feeds").add_subparsers(dest="action", required=True)
    p = command("import", cmd_feeds_import, "import OSV, Debian tracker, CISA KEV or official-warning files "
                "(all or nothing), then re-match every host", feeds)
    p.add_argument("paths", nargs="+", metavar="PATH", help="file, directory of OSV records, or OSV zip archive")
    p.add_argument("--kind", choices=["osv", "debian-tracker", "kev", "warnings"], help="skip format detection")
    p.add_argument("--by", help="who imports (recorded)")
    p.add_argument("--no-match", action="store_true", help="do not re-match hosts now (the nightly run will)")
    p = command("list", cmd_feeds_list, "imported feeds, versions and hashes", feeds)
    p.add_argument("--all", action="store_true", help="include replaced versions")

    findings = sub.add_parser("findings", help="what units must fix").add_subparsers(dest="action", required=True)
    p = command("list", cmd_findings_list, "list findings", findings)
    p.add_argument("--unit", help="unit code (includes sub-units)")
    p.add_argument("--host", type=int, help="host id")
    p.add_argument("--kind", choices=["vulnerability", "patch", "check", "exposure", "unmanaged", "eol"])
    p.add_argument("--class", dest="finding_class",
                   choices=["P0", "P1", "P2", "P3", "P4", "critical_misconfig", "failed_check", "eol"])
    p.add_argument("--status", choices=["open", "reopened", "fixed", "accepted"])
    p.add_argument("--overdue", action="store_true")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p = command("match", cmd_findings_match, "match hosts against the imported feeds now", findings)
    p.add_argument("--host", type=int, action="append", help="only this host id (repeatable)")

    p = command("scan", cmd_scan, "run a network compliance scan of a unit's ranges now (nmap)")
    p.add_argument("--unit", required=True, help="unit code")
    p.add_argument("--targets", nargs="+", metavar="CIDR_OR_ADDRESS", help="default: all the unit's ranges")
    p.add_argument("--profile", choices=["discovery", "standard", "full"], default="standard")
    p.add_argument("--ports", help="port list overriding the profile's (e.g. 22,80,443)")
    p.add_argument("--max-addresses", type=int, default=65_536, help="refuse larger scans (default 65536)")
    p.add_argument("--format", choices=["table", "json"], default="table")
