"""Matching installed packages against the imported feeds, and turning hits into findings.

The expensive side is the inventory (10,000 hosts × 1,500 packages), the cheap side the distinct
package versions in it (hosts run the same builds). So a full run asks the database for the
*distinct* (release, package, version) tuples, judges each once against an in-memory index of the
feeds, puts the vulnerable tuples in a temporary table and lets the database join them back to the
hosts. An incremental run (one changed host) reads that host's packages directly. Versions are
compared with ``rules.versions`` (dpkg / rpm semantics), never as strings.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from functools import lru_cache
from typing import Any

from sqlalchemy import Column as SAColumn
from sqlalchemy import MetaData, String, Table, bindparam, insert, or_, select, text
from sqlmodel import Session

from collector.db import Database
from collector.findings import service as findings
from collector.findings.service import Observation, Subject
from collector.hosts.models import Host, InventoryRow
from collector.vulns import service as feeds
from collector.vulns.models import KnownExploitedRow, OfficialWarningRow, VulnAffected, VulnRecord
from rules.sla import class_for_cvss
from rules.versions import InvalidVersion, version_key

PRODUCER = "feeds"
KIND = "vulnerability"
# Not findings, but counted: "not-affected" (never vulnerable in this release) and "unimportant"
# (Debian: no security impact in Debian, no fix will be made — flagging thousands would bury the
# real work). Every other unfixed state (no-dsa, postponed, ignored, open...) IS a finding, marked
# "no fix available".
NO_FINDING_STATES = frozenset({"not-affected", "unimportant"})
# Families whose feeds are keyed by source package (Debian's tracker and OSV, Alpine's secdb);
# RPM advisories list binary packages.
ECOSYSTEM_OF_FAMILY = {"debian": "deb", "ubuntu": "deb", "alpine": "apk", "rocky": "rpm", "alma": "rpm", "rhel": "rpm"}
BY_SOURCE = frozenset({"deb", "apk"})
VENDOR_SEVERITY = {  # tracker urgency, Ubuntu priority, Red Hat severity -> class, when there is no CVSS
    "critical": "P1", "high": "P2", "important": "P2", "medium": "P3", "moderate": "P3",
    "not yet assigned": "P3", "low": "P4", "negligible": "P4", "unimportant": "P4",
}
DEFAULT_CLASS = "P3"
MAX_BINARIES = 20
DIRECT_HOSTS = 200  # up to this many hosts, read their packages directly instead of the distinct pass
BATCH_HOSTS = 1000  # hosts reconciled per committed transaction in a full run


@dataclass(frozen=True, slots=True)
class Entry:
    vuln_id: str
    cves: tuple[str, ...]
    ecosystem: str
    introduced: str | None
    fixed: str | None
    last_affected: str | None
    status: str
    urgency: str | None
    versions: tuple[str, ...] = ()  # only these versions (an OSV entry without a range)


@dataclass(frozen=True, slots=True)
class Info:
    summary: str
    cvss_score: float | None
    cvss_vector: str | None
    severity: str | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """One vulnerability of one installed (release, package, version)."""

    rule: str  # the CVE id (or the record id when it has no CVE)
    feed_ids: tuple[str, ...]
    fixed: str | None
    state: str  # fixed (a fix exists) | open | no-dsa | postponed | ignored | undetermined | end-of-life


@dataclass
class FeedIndex:
    generation: tuple[int, int]
    by_package: dict[tuple[str, str], list[Entry]]
    info: dict[str, Info]
    kev: dict[str, date]
    warnings: dict[str, tuple[date, bool, str, str]]  # cve -> (date, exploited, title, source)
    entries: int = 0
    _verdicts: dict[tuple[str, str, str, str], tuple[list[Verdict], int]] = field(default_factory=dict)

    def judge(self, distro: str, package: str, version: str, ecosystem: str) -> tuple[list[Verdict], int]:
        """Vulnerabilities of this installed version, and how many entries said not-affected/unimportant."""
        key = (distro, package, version, ecosystem)
        cached = self._verdicts.get(key)
        if cached is None:
            cached = self._verdicts[key] = _judge(self.by_package.get((distro, package), ()), version, ecosystem)
        return cached


def _judge(entries: Iterable[Entry], version: str, ecosystem: str) -> tuple[list[Verdict], int]:
    if not entries:
        return [], 0
    by_rule: dict[str, Verdict] = {}
    quiet = 0
    installed = version_key(ecosystem, version)
    for e in entries:
        if e.ecosystem != ecosystem:
            continue
        if e.status in NO_FINDING_STATES:
            quiet += 1
            continue
        if e.versions and version not in e.versions:
            continue
        if e.introduced and installed < version_key(e.ecosystem, e.introduced):
            continue
        if e.last_affected and installed > version_key(e.ecosystem, e.last_affected):
            continue
        if e.fixed:
            if installed >= version_key(e.ecosystem, e.fixed):
                continue
            state = "fixed"
        else:
            state = "open" if e.status == "fixed" else e.status
        for rule in e.cves or (e.vuln_id,):
            old = by_rule.get(rule)
            if old is None or (old.state != "fixed" and state == "fixed"):  # a known fix beats "no fix"
                by_rule[rule] = Verdict(rule, (e.vuln_id,), e.fixed, state)
            elif e.vuln_id not in old.feed_ids:
                by_rule[rule] = Verdict(rule, (*old.feed_ids, e.vuln_id), old.fixed, old.state)
    return list(by_rule.values()), quiet


_cache_lock = threading.Lock()
# One index per database (a process normally has one; the tests have many), with the feed
# generation it was built from.
_cached: dict[str, FeedIndex] = {}


def _database_key(session: Session) -> str:
    return session.get_bind().url.render_as_string(hide_password=True)


def load_index(session: Session) -> FeedIndex:
    """The current feeds as an index; rebuilt only when an import changed them (any process)."""
    gen, key = feeds.generation(session), _database_key(session)
    with _cache_lock:
        cached = _cached.get(key)
        if cached is not None and cached.generation == gen:
            return cached
        index = _cached[key] = _build_index(session, gen)
        return index


def current_index(session: Session) -> FeedIndex | None:
    """The cached index if it matches the stored feeds, else None (never builds: that takes seconds)."""
    with _cache_lock:
        cached = _cached.get(_database_key(session))
    return cached if cached is not None and cached.generation == feeds.generation(session) else None


# Hosts whose packages changed while the index was not ready: matched by the background job
# (collector.scheduler), or by the nightly run if the process stops first.
_requested: dict[str, set[int]] = {}


def request_match(session: Session, host_id: int) -> None:
    with _cache_lock:
        _requested.setdefault(_database_key(session), set()).add(host_id)


def take_requests(session: Session) -> list[int]:
    with _cache_lock:
        return sorted(_requested.pop(_database_key(session), ()))


def _build_index(session: Session, gen: tuple[int, int]) -> FeedIndex:
    conn = session.connection()  # Core rows: no ORM loading cost on ~10^5-10^6 rows
    by_package: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    rows = conn.execute(select(VulnAffected.vuln_id, VulnAffected.cves, VulnAffected.distro, VulnAffected.ecosystem,
                                  VulnAffected.package, VulnAffected.introduced, VulnAffected.fixed,
                                  VulnAffected.last_affected, VulnAffected.status, VulnAffected.urgency,
                                  VulnAffected.versions))
    for r in rows:
        by_package[(r.distro or r.ecosystem, r.package)].append(Entry(
            r.vuln_id, tuple(r.cves), r.ecosystem, r.introduced, r.fixed, r.last_affected, r.status, r.urgency,
            tuple(r.versions or ())))
    info: dict[str, Info] = {}
    for r in conn.execute(select(VulnRecord.vuln_id, VulnRecord.aliases, VulnRecord.summary, VulnRecord.cvss_score,
                                    VulnRecord.cvss_vector, VulnRecord.severity)):
        item = Info(r.summary or "", r.cvss_score, r.cvss_vector, r.severity)
        for ident in (r.vuln_id, *(r.aliases or ())):
            old = info.get(ident)
            # The best-scored description of a CVE wins, whichever feed (tracker or OSV) carried it.
            if old is None or (item.cvss_score or -1) > (old.cvss_score or -1):
                info[ident] = item
    kev = {r.cve: r.date_added for r in conn.execute(select(KnownExploitedRow.cve, KnownExploitedRow.date_added))}
    warnings: dict[str, tuple[date, bool, str, str]] = {}
    for r in conn.execute(select(OfficialWarningRow.cve, OfficialWarningRow.date, OfficialWarningRow.exploited,
                                    OfficialWarningRow.title, OfficialWarningRow.source)):
        old = warnings.get(r.cve)
        if old is None or (r.exploited, -r.date.toordinal()) > (old[1], -old[0].toordinal()):
            warnings[r.cve] = (r.date, r.exploited, r.title, r.source)
    return FeedIndex(gen, dict(by_package), info, kev, warnings, sum(len(v) for v in by_package.values()))


# ---- the run -------------------------------------------------------------------------------------

@dataclass(slots=True)
class MatchReport:
    hosts: int = 0
    package_versions: int = 0  # distinct (release, package, version) judged
    vulnerable_packages: int = 0  # (host, package) pairs with at least one vulnerability
    not_affected: int = 0  # entries the distro marks not-affected or unimportant for an installed version
    no_fix: int = 0  # vulnerable (host, package, CVE) with no fixed version available
    invalid_versions: int = 0
    findings: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class _Pkg:
    host_id: int
    distro: str
    name: str
    version: str
    source: str | None
    source_version: str | None


def match(session: Session, *, now: datetime, host_ids: Iterable[int] | None = None,
          on_progress: Callable[[str], None] | None = None) -> MatchReport:
    """Match all hosts (``host_ids`` None) or these hosts, and reconcile their findings, in this transaction."""
    started = time.perf_counter()
    report = MatchReport()
    observed = _observe(session, report, host_ids=host_ids, on_progress=on_progress)
    result = findings.reconcile(session, kind=KIND, producer=PRODUCER, observed=observed, now=now,
                                proof=lambda subject, row: _proof(session, subject, row))
    report.findings = result.as_dict()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def match_all(db: Database, *, now: datetime, on_progress: Callable[[str], None] | None = None,
              batch_hosts: int = BATCH_HOSTS) -> MatchReport:
    """Every host, its findings reconciled and committed ``batch_hosts`` hosts at a time.

    The judging reads outside any write transaction, and each batch commits on its own: on SQLite a
    single transaction would hold the one writer lock (and with it agents' ingest) for the whole
    run — about a minute for 10,000 hosts. Each host's list is complete, so batches by host give
    the same findings as one run.
    """
    started = time.perf_counter()
    report = MatchReport()
    say = on_progress or (lambda _msg: None)
    with db.session() as session:
        observed = list(_observe(session, report, host_ids=None, on_progress=on_progress).items())
    totals: dict[str, int] = {}
    for i in range(0, len(observed), batch_hosts):
        batch = dict(observed[i:i + batch_hosts])
        with db.transaction() as session:
            result = findings.reconcile(session, kind=KIND, producer=PRODUCER, observed=batch, now=now,
                                        proof=lambda subject, row, s=session: _proof(s, subject, row))
        for k, v in result.as_dict().items():
            totals[k] = totals.get(k, 0) + v
        say(f"reconciled {min(i + batch_hosts, len(observed))}/{len(observed)} hosts")
    report.findings = totals
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _observe(session: Session, report: MatchReport, *, host_ids: Iterable[int] | None,
             on_progress: Callable[[str], None] | None) -> dict[Subject, list[Observation]]:
    """What the feeds say about each host's installed packages (every host with a release key listed)."""
    say = on_progress or (lambda _msg: None)
    index = load_index(session)
    hosts_q = select(Host.id, Host.unit_id, Host.security_level, Host.internet_facing, Host.distro)
    wanted = None if host_ids is None else sorted(set(host_ids))
    if wanted is not None:
        hosts_q = hosts_q.where(Host.id.in_(wanted))
    hosts = {h.id: h for h in session.connection().execute(hosts_q)}
    report.hosts = len(hosts)
    if on_progress is not None:
        say(f"matching {len(hosts)} hosts against {index.entries} affected entries")
    direct = wanted is not None and len(wanted) <= DIRECT_HOSTS
    pkgs = _direct_rows(session, wanted) if direct else _vulnerable_rows(session, index, report, wanted, say)
    observed: dict[Subject, list[Observation]] = {
        Subject(identity=f"host:{h.id}", unit_id=h.unit_id, host_id=h.id, level=h.security_level,
                internet_facing=h.internet_facing): [] for h in hosts.values() if h.distro}
    subjects = {s.host_id: s for s in observed}
    grouped: dict[tuple[int, str, str], list[_Pkg]] = defaultdict(list)  # (host, source pkg, src version)
    for p in pkgs:
        if p.host_id not in subjects:
            continue
        eco = _ecosystem(p.distro)
        name, version = _match_name(p.name, p.version, p.source, p.source_version, eco)
        grouped[(p.host_id, name, version)].append(p)
    # Hosts on the same release with the same build share their observations (and, in reconcile,
    # their digests): the per-finding work is done once per distinct installed version.
    same: dict[tuple, Observation] = {}
    for (host_id, name, version), binaries in grouped.items():
        distro = binaries[0].distro
        eco = _ecosystem(distro)
        try:
            verdicts, quiet = index.judge(distro, name, version, eco)
        except InvalidVersion:
            report.invalid_versions += 1
            continue
        if direct:
            report.not_affected += quiet
        if verdicts:
            report.vulnerable_packages += 1
        shape = tuple(sorted((b.name, b.version) for b in binaries))
        for v in verdicts:
            report.no_fix += v.state != "fixed"
            key = (distro, name, version, v, shape)
            obs = same.get(key)
            if obs is None:
                obs = same[key] = _observation(index, v, distro, name, version, binaries)
            observed[subjects[host_id]].append(obs)
    say(f"reconciling findings of {len(observed)} hosts")
    return observed


@lru_cache(maxsize=256)
def _ecosystem(distro: str) -> str:
    return ECOSYSTEM_OF_FAMILY.get(distro.split(":", 1)[0], "deb")


def _match_name(name: str, version: str, source: str | None, source_version: str | None,
                eco: str) -> tuple[str, str]:
    """The (package, version) the feeds key this install by: source for deb/apk, binary for rpm."""
    if eco in BY_SOURCE:
        return source or name, source_version or version
    return name, version


_PKG_COLUMNS = (InventoryRow.host_id, Host.distro, InventoryRow.name, InventoryRow.version, InventoryRow.source,
                InventoryRow.source_version)


def _current_packages():
    return (select(*_PKG_COLUMNS).join(Host, Host.id == InventoryRow.host_id)
            .where(InventoryRow.section == "packages", InventoryRow.valid_to.is_(None), Host.distro.is_not(None)))


def _direct_rows(session: Session, host_ids: list[int]) -> list[_Pkg]:
    query = _current_packages().where(InventoryRow.host_id.in_(host_ids))
    return [_Pkg(*r) for r in session.connection().execute(query).all()]


def _vulnerable_rows(session: Session, index: FeedIndex, report: MatchReport, host_ids: list[int] | None,
                     say: Callable[[str], None]) -> list[_Pkg]:
    """Judge each distinct installed version once; return only the rows of vulnerable ones."""
    # Without the hosts join, the distinct versions come from the covering index alone; each is then
    # judged for every release present (a cheap dictionary miss for most).
    distinct = (select(InventoryRow.name, InventoryRow.version, InventoryRow.source, InventoryRow.source_version)
                .distinct().where(InventoryRow.section == "packages", InventoryRow.valid_to.is_(None)))
    if host_ids is not None:
        distinct = distinct.where(InventoryRow.host_id.in_(host_ids))
    present = select(Host.distro).distinct().where(Host.distro.is_not(None))
    distros = sorted({d for (d,) in session.connection().execute(present)})
    vulnerable: set[tuple[str, str, str]] = set()
    judged: set[tuple[str, str, str, str]] = set()
    for name, version, source, source_version in session.connection().execute(distinct).all():
        for distro in distros:
            eco = _ecosystem(distro)
            pname, pversion = _match_name(name, version, source, source_version, eco)
            if (distro, pname) not in index.by_package:
                continue
            try:
                verdicts, quiet = index.judge(distro, pname, pversion, eco)
            except InvalidVersion:
                report.invalid_versions += 1
                continue
            if (distro, pname, pversion, eco) not in judged:
                judged.add((distro, pname, pversion, eco))
                report.not_affected += quiet
            if verdicts:
                vulnerable.add((distro, name, version))
    report.package_versions = len(judged)
    say(f"{len(judged)} distinct package versions judged, {len(vulnerable)} vulnerable")
    if not vulnerable:
        return []
    temp = Table("khien_match_vulnerable", MetaData(), SAColumn("distro", String(32)), SAColumn("name", String(255)),
                 SAColumn("version", String(255)), prefixes=["TEMPORARY"])
    conn = session.connection()
    temp.drop(conn, checkfirst=True)
    temp.create(conn)
    try:
        rows = [{"distro": d, "name": n, "version": v} for d, n, v in vulnerable]
        for i in range(0, len(rows), 5000):
            conn.execute(insert(temp), rows[i:i + 5000])
        if conn.dialect.name == "postgresql":
            # Autovacuum never analyzes temporary tables: without statistics the planner guesses their
            # size and hashes all 15 M package rows instead of looking the few thousand versions up.
            conn.execute(text("ANALYZE khien_match_vulnerable"))
        # CROSS JOIN fixes SQLite's join order: the few vulnerable versions drive lookups in the
        # covering package index (without it SQLite walks every package row); PostgreSQL reorders
        # CROSS JOINs freely and plans this as a hash join.
        sql = ("SELECT r.host_id, h.distro, r.name, r.version, r.source, r.source_version "
               "FROM khien_match_vulnerable t CROSS JOIN inventory_rows r CROSS JOIN hosts h "
               "WHERE r.section = 'packages' AND r.valid_to IS NULL AND r.name = t.name AND r.version = t.version "
               "AND h.id = r.host_id AND h.distro = t.distro")
        query = text(sql)
        if host_ids is not None:
            query = text(sql + " AND r.host_id IN :ids").bindparams(bindparam("ids", expanding=True))
        params = {"ids": host_ids} if host_ids is not None else {}
        return [_Pkg(*r) for r in conn.execute(query, params).all()]
    finally:
        temp.drop(conn)


def _observation(index: FeedIndex, v: Verdict, distro: str, name: str, version: str,
                 binaries: list[_Pkg]) -> Observation:
    info = index.info.get(v.rule) or next((index.info[f] for f in v.feed_ids if f in index.info), None)
    warning = index.warnings.get(v.rule)
    kev_added = index.kev.get(v.rule)
    finding_class = _classify(info, warning, kev_added)
    summary = (info.summary if info else "").strip().splitlines()[0][:200] if info and info.summary else ""
    title = f"{v.rule} in {name} {version}" + (f": {summary}" if summary else "")
    evidence: dict[str, Any] = {
        "distro": distro, "package": name, "installed_version": version, "fixed_version": v.fixed,
        "state": v.state, "records": list(v.feed_ids[:10]),
        "binaries": [{"name": b.name, "version": b.version}
                     for b in sorted(binaries, key=lambda b: (b.name, b.version))[:MAX_BINARIES]],
    }
    if kev_added:
        evidence["known_exploited"] = {"catalog": "CISA KEV", "date_added": kev_added.isoformat()}
    if warning:
        evidence["official_warning"] = {"date": warning[0].isoformat(), "exploited": warning[1],
                                        "title": warning[2][:200], "source": warning[3]}
    return Observation(
        rule=v.rule, location=name, title=title, finding_class=finding_class, evidence=evidence,
        cvss_score=info.cvss_score if info else None, cvss_vector=info.cvss_vector if info else None,
        fix_available=v.state == "fixed", distro_state=v.state, fixed_version=v.fixed,
        warning_date=datetime.combine(warning[0], dtime(0, 0), tzinfo=UTC) if warning else None)


def _classify(info: Info | None, warning: tuple[date, bool, str, str] | None, kev_added: date | None) -> str:
    """P0 when known exploited (KEV, or an official warning saying so); else by CVSS, else vendor severity.

    An official warning that does not say "exploited" still lifts the finding to at least P1: the
    national authority chose to warn about it.
    """
    if kev_added is not None or (warning is not None and warning[1]):
        return "P0"
    cls = DEFAULT_CLASS
    if info is not None:
        vendor = VENDOR_SEVERITY.get((info.severity or "").lower().rstrip("*").strip(), DEFAULT_CLASS)
        cls = class_for_cvss(info.cvss_score) or vendor
    if warning is not None and cls in ("P2", "P3", "P4"):
        return "P1"
    return cls


def _proof(session: Session, subject: Subject, row: Any) -> dict[str, Any]:
    """What shows a vulnerability finding fixed: the package's versions installed now, or its removal."""
    installed = session.connection().execute(
        select(InventoryRow.name, InventoryRow.version, InventoryRow.valid_from).where(
            InventoryRow.host_id == subject.host_id, InventoryRow.section == "packages",
            InventoryRow.valid_to.is_(None),
            or_(InventoryRow.name == row.location, InventoryRow.source == row.location))).all()
    if not installed:
        return {"proof": "package removed", "package": row.location}
    return {"proof": "fixed version installed" if row.fixed_version else "no longer affected per the feeds",
            "package": row.location, "fixed_version": row.fixed_version,
            "installed": [{"name": n, "version": v, "since": s.isoformat()} for n, v, s in installed[:MAX_BINARIES]]}
