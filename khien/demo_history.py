"""``khien demo``'s synthetic province: departments and communes with plausible history, so a newcomer
sees a full ranking at once.

Every unit is marked ``synthetic`` (and named "... (mô phỏng)"); the history runs from 1 January of
the previous year to yesterday (Asia/Ho_Chi_Minh): heartbeats, vulnerability and patch findings
opened and fixed against their SLA deadlines, exposures, check results that change over time,
alerts, unmanaged addresses found by scans and reviewed attestations. Then every month whose
snapshot day has ended is frozen and the last 30 days' values are stored, exactly as the daily job
would have done. One ``random.Random(seed)`` drives it all: the same seed gives the same province.

Each unit has a quality ``q`` (0–1) drawn within its profile (good / average / weak); every
behaviour below is a probability that follows ``q``, which is what spreads the grades over A–E.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

from sqlalchemy import select
from sqlmodel import Session

from collector.alerts.models import Alert
from collector.attestations.models import ITEM_IDS, RATINGS, Attestation
from collector.bulk import insert_many
from collector.compliance.models import CheckResultRow
from collector.compliance.service import builtin_checks
from collector.db import Database
from collector.errors import Conflict
from collector.findings.models import Finding, FindingEvent
from collector.hosts.models import Host
from collector.scans.models import ScanAsset
from collector.scoring import service as scoring
from collector.scoring.activity import LOCAL_TZ, local_day
from collector.scoring.indicators import ANTIMALWARE, LOGGING, end_of_day
from collector.scoring.models import HostActivity
from collector.types import utcnow
from collector.units import service as units
from collector.units.models import Unit, UnitCreate
from rules.checks.model import DEFAULT_POLICY
from rules.sla import builtin_sla, deadline

SEED = 2026
SUFFIX = " (mô phỏng)"
PRODUCER = "demo"  # the findings' source: no real producer ever reconciles (closes) them
DAILY_DAYS = 30  # the trend views' last 30 days of stored values
DEPARTMENTS = (
    ("STP", "Sở Tư pháp"), ("STC", "Sở Tài chính"), ("SNV", "Sở Nội vụ"), ("SXD", "Sở Xây dựng"),
    ("SNNMT", "Sở Nông nghiệp và Môi trường"), ("SCT", "Sở Công Thương"), ("SGDDT", "Sở Giáo dục và Đào tạo"),
    ("SYT", "Sở Y tế"), ("SVHTTDL", "Sở Văn hóa, Thể thao và Du lịch"), ("SNGV", "Sở Ngoại vụ"),
    ("SDTTG", "Sở Dân tộc và Tôn giáo"), ("TTRA", "Thanh tra tỉnh"), ("VPUB", "Văn phòng UBND tỉnh"),
    ("VPDDBQH", "Văn phòng Đoàn ĐBQH và HĐND tỉnh"), ("BQLKKT", "Ban Quản lý Khu kinh tế"),
    ("BQLDA", "Ban Quản lý dự án đầu tư xây dựng"), ("TTPVHCC", "Trung tâm Phục vụ hành chính công"),
    ("DPTTH", "Đài Phát thanh và Truyền hình"), ("QDTPT", "Quỹ Đầu tư phát triển"),
    ("TTXTDT", "Trung tâm Xúc tiến Đầu tư, Thương mại và Du lịch"),
)
COMMUNES = (
    "Tân Lập", "Hòa Bình", "An Phú", "Phước Long", "Đông Hòa", "Tân Phú", "Vĩnh Thạnh", "Yên Thế", "Quảng Phú",
    "Minh Đức", "Thanh Sơn", "Tân Thành", "Bình Minh", "Hưng Lợi", "Mỹ Hòa", "Long Hưng", "Phú Lộc", "Xuân Trường",
    "Đức Thắng", "Nghĩa Đàn", "Cẩm Bình", "Thạch Bàn", "Hải Châu", "Sơn Trà", "Ngọc Lặc", "Kỳ Anh", "Quế Sơn",
    "Tam Nông", "Hồng Phong", "Lạc Thủy", "Bảo Lâm", "Đồng Xoài", "Ea Kar", "Krông Pắc", "Phù Mỹ", "Tuy Phước",
    "Cái Nước", "Vĩnh Lợi", "Châu Thành", "Trà Ôn",
)
WARDS = frozenset(range(0, 40, 5))  # every fifth is a ward (phường), the rest communes (xã)
PROFILES = {"good": (0.82, 1.0), "average": (0.45, 0.78), "weak": (0.0, 0.38)}
LEVELS, LEVEL_WEIGHTS = (1, 2, 3, 4), (15, 40, 35, 10)
OSES = (("Debian GNU/Linux", "12", "debian:12", "6.1.0-26-amd64"), ("Debian GNU/Linux", "11", "debian:11",
        "5.10.0-32-amd64"), ("Ubuntu", "22.04", "ubuntu:22.04", "5.15.0-119-generic"),
        ("Ubuntu", "24.04", "ubuntu:24.04", "6.8.0-45-generic"))
ROLES = ("web", "app", "db", "mail", "dns", "file", "portal", "backup", "log", "gis", "erp", "dvc")
PACKAGES = ("openssl", "openssh-server", "nginx", "apache2", "linux-image", "sudo", "glibc", "curl", "bind9",
            "php8.2", "postgresql-15", "mariadb-server", "samba", "tomcat9", "libxml2", "git", "python3.11",
            "exim4", "vim", "systemd")
CLASSES, CLASS_WEIGHTS = ("P0", "P1", "P2", "P3", "P4"), (3, 12, 30, 40, 15)
CVSS = {"P0": (7.5, 9.8), "P1": (9.0, 10.0), "P2": (7.0, 8.9), "P3": (4.0, 6.9), "P4": (1.0, 3.9)}
EXPOSURES = (("exposed-service:rdp", "tcp/3389", "critical_misconfig",
              "Remote Desktop (RDP) reachable from the network"),
             ("ssh-password-auth", "tcp/22", "failed_check", "SSH server accepts password authentication"),
             ("tls-weak-protocol", "tcp/443", "failed_check", "Server accepts TLS versions older than 1.2"))
ALERT_RULES = (("ssh_lnx_brute_force", "high"), ("ssh_lnx_success_after_failures", "high"),
               ("sudo_lnx_not_in_sudoers", "high"), ("file_lnx_sudoers_changed", "high"),
               ("acct_lnx_added_to_privileged_group", "high"), ("file_lnx_authorized_keys_changed", "high"),
               ("ssh_lnx_root_login", "high"), ("acct_lnx_new_uid0_account", "critical"),
               ("net_any_port_scan", "medium"), ("ssh_lnx_invalid_user_enumeration", "medium"))
DEFACEMENT = ("file_lnx_web_root_change", "high")
HANDLED = (("resolved", 70), ("false_positive", 15), ("acknowledged", 10), ("in_progress", 5))
# ~30 checks per host: the ones A4 and A5 read, the critical ones A3 caps on, and common hardening.
CHECKS = (*ANTIMALWARE.values(), *LOGGING.values(), "acct_lnx_no_empty_passwords",
          "ssh_lnx_permit_empty_passwords_disabled", "ssh_lnx_root_password_login_disabled",
          "svc_lnx_telnet_disabled", "fw_lnx_firewall_active", "fw_lnx_default_inbound_deny",
          "ssh_lnx_password_auth_disabled", "ssh_lnx_root_login_disabled", "ssh_lnx_max_auth_tries",
          "ssh_lnx_weak_ciphers_disabled", "ssh_lnx_x11_forwarding_disabled", "pam_lnx_password_min_length",
          "pam_lnx_lockout_configured", "pam_lnx_password_complexity", "acct_lnx_password_max_age",
          "acct_lnx_only_root_uid0", "file_lnx_shadow_perms", "file_lnx_passwd_perms", "sudo_lnx_logfile",
          "kern_lnx_aslr_full", "kern_lnx_tcp_syncookies_enabled", "log_lnx_remote_forwarding",
          "upd_lnx_automatic_security_updates")

Out = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Size:
    """How much to generate: the full province by default, less for tests."""

    departments: int = len(DEPARTMENTS)
    communes: int = len(COMMUNES)
    hosts: tuple[int, int] = (5, 30)
    start: date | None = None  # default: 1 January of the previous year


@dataclass(slots=True)
class Report:
    units: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    frozen: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already frozen before the demo data existed
    days: int = 0
    seconds: float = 0.0


@dataclass(slots=True)
class UnitPlan:
    id: int
    code: str
    slug: str
    profile: str
    q: float


@dataclass(slots=True)
class HostPlan:
    id: int
    unit: UnitPlan
    level: int
    exposed: bool
    first_seen: datetime
    address: str | None
    days: list[date]  # the days its agent reported


def has_history(session: Session, *, province_code: str, size: Size | None = None) -> bool:
    """Whether the generated units exist already (written in one transaction with all the rest of the
    history, so they stand for all of it)."""
    codes = [w[0] for w in _wanted(province_code, size or Size())]
    return session.exec(select(Unit.id).where(Unit.code.in_(codes))).first() is not None


def seed_history(db: Database, *, province_code: str = "DEMO", size: Size | None = None, seed: int = SEED,
                 now: datetime | None = None, out: Out = _stderr) -> Report | None:
    """Generate the synthetic province's history under ``province_code`` (once: None when it exists)."""
    size = size or Size()
    now = now or utcnow()
    started = time.perf_counter()
    end = local_day(now) - timedelta(days=1)
    start = size.start or date(end.year - 1, 1, 1)
    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data, not a secret
    report = Report()
    with db.transaction() as session:
        if has_history(session, province_code=province_code, size=size):
            return None
        out(f"demo: generating history {start.isoformat()} … {end.isoformat()} (synthetic data, seed {seed})")
        plans = _create_units(session, rng, province_code=province_code, size=size)
        report.units = len(plans)
        gen = _Generator(session, rng, start=start, end=end, now=now, report=report)
        for plan in plans:
            gen.unit(plan, size.hosts)
        out("demo: " + ", ".join(f"{n:,} {name}" for name, n in report.rows.items()))
        _freeze(session, start=start, now=now, report=report, out=out)
        for day in (end - timedelta(days=i) for i in range(DAILY_DAYS - 1, -1, -1)):
            if day >= start:
                scoring.store_day(session, day=day, now=now)
                report.days += 1
        out(f"demo: stored daily values for the last {report.days} days")
    report.seconds = time.perf_counter() - started
    out(f"demo: synthetic province ready in {report.seconds:.1f} s")
    return report


def _freeze(session: Session, *, start: date, now: datetime, report: Report, out: Out) -> None:
    """Freeze every month from the history's first whose snapshot day has ended, oldest first."""
    year, month = start.year, start.month
    while end_of_day(scoring.snapshot_day(period := f"{year}-{month:02d}")) <= now:
        try:
            scoring.freeze_month(session, period=period, now=now)
            report.frozen.append(period)
        except Conflict:  # frozen before the demo units existed: a frozen month is never rewritten
            report.skipped.append(period)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    out(f"demo: froze {len(report.frozen)} monthly snapshots"
        + (f" ({len(report.skipped)} already frozen, left as they were)" if report.skipped else ""))


def _wanted(province_code: str, size: Size) -> list[tuple[str, str, str, str]]:
    """(code, name, kind, hostname prefix) of every unit to generate."""
    wanted = [(f"{province_code}-{code}", name + SUFFIX, "department", code.lower())
              for code, name in DEPARTMENTS[:size.departments]]
    n_ward = n_commune = 0
    for i, name in enumerate(COMMUNES[:size.communes]):
        if i in WARDS:
            n_ward += 1
            wanted.append((f"{province_code}-P{n_ward:02d}", f"Phường {name}{SUFFIX}", "commune", f"p{n_ward:02d}"))
        else:
            n_commune += 1
            wanted.append((f"{province_code}-X{n_commune:02d}", f"Xã {name}{SUFFIX}", "commune",
                           f"x{n_commune:02d}"))
    return wanted


def _create_units(session: Session, rng: random.Random, *, province_code: str, size: Size) -> list[UnitPlan]:
    province = units.get_by_code(session, code=province_code)
    wanted = _wanted(province_code, size)
    plans = []
    for kind in ("department", "commune"):
        group = [w for w in wanted if w[2] == kind]
        profiles = [("good", "average", "weak")[i % 3] for i in range(len(group))]
        rng.shuffle(profiles)
        for (code, name, _, slug), profile in zip(group, profiles, strict=True):
            unit = units.create(session, data=UnitCreate(code=code, name=name, kind=kind,
                                                         parent_code=province.code))
            unit.synthetic = True
            session.add(unit)
            low, high = PROFILES[profile]
            plans.append(UnitPlan(id=unit.id, code=code, slug=slug, profile=profile, q=rng.uniform(low, high)))
    session.flush()
    return plans


class _Generator:
    """Writes one unit's hosts and history at a time (bounded memory, a few bulk inserts per unit)."""

    def __init__(self, session: Session, rng: random.Random, *, start: date, end: date, now: datetime,
                 report: Report) -> None:
        self.session, self.conn, self.rng = session, session.connection(), rng
        self.start, self.end, self.now, self.report = start, end, now, report
        self.start_at = datetime.combine(start, dtime(0), LOCAL_TZ).astimezone(UTC)
        self.sla = builtin_sla()
        checkset = builtin_checks()
        policy = checkset.policies[DEFAULT_POLICY]
        self.checks = {c: checkset.checks[c] for c in CHECKS}
        self.requirements = {c: [r.id for r in policy.requirements if c in r.checks] for c in CHECKS}
        self.exposed_addresses = 0
        first = start - timedelta(days=31)
        self.days = [first + timedelta(days=i) for i in range((end - first).days + 1)]
        self.n = 0

    def _insert(self, table, rows: list[dict], name: str) -> None:
        insert_many(self.conn, table, rows)
        self.report.rows[name] = self.report.rows.get(name, 0) + len(rows)

    def _at(self, day: date, hour: float = 9.0) -> datetime:
        return datetime.combine(day, dtime(0), LOCAL_TZ).astimezone(UTC) + timedelta(hours=hour)

    def _between(self, a: datetime, b: datetime) -> datetime:
        return a + (b - a) * self.rng.random()

    def _key(self, *parts: object) -> str:
        self.n += 1
        return hashlib.sha256("|".join(map(str, ("demo", self.n, *parts))).encode()).hexdigest()

    def unit(self, plan: UnitPlan, host_range: tuple[int, int]) -> None:
        hosts = self._hosts(plan, self.rng.randint(*host_range))
        self._vulnerabilities(plan, hosts)
        self._exposures(plan, hosts)
        self._checks(plan, hosts)
        self._alerts(plan, hosts)
        self._unmanaged(plan)
        self._attestations(plan)

    def _hosts(self, plan: UnitPlan, count: int) -> list[HostPlan]:
        rng, rows, plans = self.rng, [], []
        for i in range(count):
            os_name, os_version, distro, kernel = rng.choice(OSES)
            level, exposed = rng.choices(LEVELS, LEVEL_WEIGHTS)[0], rng.random() < 0.05 + 0.1 * (1 - plan.q)
            address = None
            if exposed:
                self.exposed_addresses += 1
                k = self.exposed_addresses
                address = f"203.0.113.{k}" if k < 255 else f"198.51.100.{k - 254}"  # documentation ranges
            host = HostPlan(0, plan, level, exposed, self.start_at - timedelta(days=rng.uniform(31, 400)), address,
                            self._reported_days(plan.q))
            plans.append(host)
            rows.append({"unit_id": plan.id, "machine_id": f"{rng.getrandbits(128):032x}", "macs": [],
                         "hostname": f"{plan.slug}-{ROLES[i % len(ROLES)]}{i // len(ROLES) + 1:02d}",
                         "platform": "linux", "os_name": os_name, "os_version": os_version, "kernel": kernel,
                         "agent_version": "0.1.0", "security_level": level, "internet_facing": exposed,
                         "distro": distro, "first_seen": host.first_seen,
                         "last_seen": self._at(host.days[-1], 8 + 10 * rng.random()) if host.days else None,
                         "inventory_hashes": {}})
        self._insert(Host.__table__, rows, "hosts")
        ids = dict(self.session.execute(select(Host.hostname, Host.id).where(Host.unit_id == plan.id)).all())
        for row, host in zip(rows, plans, strict=True):
            host.id = ids[row["hostname"]]
        self._insert(HostActivity.__table__, [{"host_id": h.id, "unit_id": plan.id, "day": day}
                                              for h in plans for day in h.days], "heartbeats")
        return plans

    def _reported_days(self, q: float) -> list[date]:
        """The days a host's agent reported: good units almost every day; weak ones miss days and some
        hosts go silent for weeks. From 31 days before the history: the first snapshot looks back 30."""
        rng = self.rng
        daily = 0.975 + 0.024 * q
        spell = 0.15 * (1 - q) ** 1.5 / 30  # chance per day that the host falls silent for a while
        out, silent = [], 0
        for day in self.days:
            if silent:
                silent -= 1
            elif rng.random() < spell:
                silent = rng.randint(5, 40)
            elif rng.random() < daily:
                out.append(day)
        return out

    def _fix_time(self, q: float, opened: datetime, due: datetime, *, never: float) -> datetime | None:
        """When a finding was fixed: good units mostly before the due date, weak ones late or never."""
        rng = self.rng
        if rng.random() < never * (1 - q):
            return None
        span = due - opened
        if rng.random() < 0.1 + 0.88 * q:
            fixed = opened + span * rng.uniform(0.1, 0.95)
        else:
            fixed = opened + span * rng.uniform(1.05, 1.5 + 3 * (1 - q))
        return fixed if fixed < self.now else None

    def _finding(self, host: HostPlan, *, kind: str, rule: str, location: str, title: str, cls: str,
                 opened: datetime, fixed: datetime | None, cvss: float | None = None) -> dict:
        """A finding row. Its producer is PRODUCER, not "feeds" or "scan": those reconcile what they see
        now, and a synthetic host has no inventory, so the nightly re-match would close them all."""
        due = deadline(self.sla, cls, level=host.level, internet_facing=host.exposed, clock_start=opened)
        return {"unit_id": host.unit.id, "host_id": host.id, "address": host.address if kind == "exposure" else None,
                "identity": f"host:{host.id}", "kind": kind, "rule": rule, "location": location,
                "dedupe_key": self._key(host.id, kind, rule, location), "generation": 0, "title": title,
                "finding_class": cls, "cvss_score": cvss, "fix_available": True,
                "status": "fixed" if fixed else "open", "sources": "" if fixed else PRODUCER, "evidence": {},
                "first_seen": opened, "last_seen": fixed or self.now, "clock_start": opened, "due_at": due.due_at,
                "mitigate_by": due.mitigate_by, "sla_version": due.version, "fixed_at": fixed,
                "fixed_proof": {"proof": "synthetic demo data", "by": PRODUCER} if fixed else None, "reopened_count": 0,
                "obs_hash": ""}

    def _vulnerabilities(self, plan: UnitPlan, hosts: list[HostPlan]) -> None:
        rng, q = self.rng, plan.q
        opened_from = self.start_at - timedelta(days=90)
        months = (self.now - opened_from) / timedelta(days=30)
        rows = []
        for host in hosts:
            for _ in range(round(months * (0.6 + 1.2 * (1 - q)) * rng.uniform(0.6, 1.4))):
                opened = self._between(opened_from, self.now - timedelta(hours=1))
                package = rng.choice(PACKAGES)
                if rng.random() < 0.2:  # a pending security update the agent reported (always P2)
                    cls, kind, rule, cvss = "P2", "patch", "pending-security-update", None
                    title = f"Security update pending for {package}"
                else:
                    cls = rng.choices(CLASSES, CLASS_WEIGHTS)[0]
                    kind, cvss = "vulnerability", round(rng.uniform(*CVSS[cls]), 1)
                    rule = f"CVE-{opened.year - rng.choice((0, 0, 1))}-{rng.randint(1000, 52999)}"
                    title = f"{rule} in {package}"
                due = deadline(self.sla, cls, level=host.level, internet_facing=host.exposed, clock_start=opened)
                fixed = self._fix_time(q, opened, due.due_at, never=0.5 if cls != "P4" else 0.9)
                rows.append(self._finding(host, kind=kind, rule=rule, location=package, title=title, cls=cls,
                                          opened=opened, fixed=fixed, cvss=cvss))
        self._insert(Finding.__table__, rows, "findings")
        self._fixed_events(plan)

    def _exposures(self, plan: UnitPlan, hosts: list[HostPlan]) -> None:
        rows = []
        for host in (h for h in hosts if h.exposed):
            for rule, location, cls, title in EXPOSURES:
                if self.rng.random() < 0.15 + 0.6 * (1 - plan.q):
                    opened = self._between(self.start_at - timedelta(days=60), self.now - timedelta(days=1))
                    due = deadline(self.sla, cls, level=host.level, internet_facing=True, clock_start=opened)
                    fixed = self._fix_time(plan.q, opened, due.due_at, never=0.6)
                    rows.append(self._finding(host, kind="exposure", rule=rule, location=location, title=title,
                                              cls=cls, opened=opened, fixed=fixed))
        self._insert(Finding.__table__, rows, "findings")
        self._fixed_events(plan, kind="exposure")

    def _fixed_events(self, plan: UnitPlan, kind: str | None = None) -> None:
        f = Finding
        query = select(f.id, f.fixed_at, f.fixed_proof).where(f.unit_id == plan.id, f.fixed_at.is_not(None))
        query = query.where(f.kind == kind) if kind else query.where(f.kind.in_(("vulnerability", "patch")))
        rows = [{"finding_id": fid, "unit_id": plan.id, "at": at, "action": "fixed", "detail": proof}
                for fid, at, proof in self.session.execute(query)]
        self._insert(FindingEvent.__table__, rows, "finding events")

    def _checks(self, plan: UnitPlan, hosts: list[HostPlan]) -> None:
        """Check results valid from enrolment; a few change once (the superseded row gets its valid_to)."""
        rng, q, rows = self.rng, plan.q, []
        for host in hosts:
            status = {}
            for check_id, check in self.checks.items():
                if check_id in ANTIMALWARE.values():
                    p = 0.15 + 0.84 * q
                else:
                    p = (0.7 + 0.3 * q) if check.critical else (0.25 + 0.73 * q)
                status[check_id] = "pass" if rng.random() < p else "fail"
            changes = {c: self._between(self.start_at, self.now) for c in rng.sample(CHECKS, rng.randint(0, 4))}
            for check_id, check in self.checks.items():
                base = {"unit_id": plan.id, "host_id": host.id, "policy_id": DEFAULT_POLICY, "check_id": check_id,
                        "severity": check.severity, "critical": check.critical, "level": host.level,
                        "evidence": "", "requirements": self.requirements[check_id]}
                first = status[check_id]
                if check_id in changes:
                    # Mostly a failure fixed; sometimes a regression (drift after an update).
                    first = "fail" if rng.random() < 0.75 else "pass"
                    then = "pass" if first == "fail" else "fail"
                    rows.append(base | {"status": first, "valid_from": host.first_seen, "valid_to": changes[check_id]})
                    rows.append(base | {"status": then, "valid_from": changes[check_id], "valid_to": None})
                else:
                    rows.append(base | {"status": first, "valid_from": host.first_seen, "valid_to": None})
        self._insert(CheckResultRow.__table__, rows, "check results")

    def _alerts(self, plan: UnitPlan, hosts: list[HostPlan]) -> None:
        rng, q = self.rng, plan.q
        rows = []
        months = max(1, round((self.now - self.start_at) / timedelta(days=30)))
        handled_p = 0.15 + 0.84 * q
        for _ in range(round(months * len(hosts) * rng.uniform(0.08, 0.2))):
            rows.append(self._alert(plan, rng.choice(hosts), rng.choice(ALERT_RULES), handled_p))
        for host in (h for h in hosts if h.exposed and rng.random() < 0.4 * (1 - q)):
            rows.append(self._alert(plan, host, DEFACEMENT, handled_p))
        self._insert(Alert.__table__, rows, "alerts")

    def _alert(self, plan: UnitPlan, host: HostPlan, rule: tuple[str, str], handled_p: float) -> dict:
        rng = self.rng
        created = self._between(self.start_at, self.now - timedelta(hours=2))
        last = created + timedelta(minutes=rng.uniform(0, 180))
        handled = rng.random() < handled_p
        status = rng.choices([s for s, _ in HANDLED], [w for _, w in HANDLED])[0] if handled else "new"
        count = rng.randint(1, 12)
        return {"unit_id": plan.id, "host_id": host.id, "rule_id": rule[0], "severity": rule[1],
                "dedupe_key": self._key(host.id, rule[0]), "group": {}, "status": status, "count": count,
                "event_count": count * rng.randint(1, 6), "event_ids": [], "first_seen": created, "last_seen": last,
                "created_at": created,
                "updated_at": min(self.now, last + timedelta(hours=rng.uniform(1, 30))) if handled else last}

    def _unmanaged(self, plan: UnitPlan) -> None:
        """Addresses the scans saw answering that no agent reports (A1 counts them as unmonitored)."""
        rng, rows = self.rng, []
        for k in range(max(0, round(2.5 * (1 - plan.q) - 0.4 + rng.uniform(-0.5, 0.5)))):
            seen = self.now - timedelta(days=rng.uniform(0, 3))
            rows.append({"unit_id": plan.id, "address": f"10.{plan.id % 250}.{k + 1}.{rng.randint(10, 250)}",
                         "host_id": None, "state": "up",
                         "first_seen": self._between(self.start_at, self.now - timedelta(days=30)),
                         "last_scanned": seen, "last_up": seen, "next_scan_at": seen + timedelta(days=1)})
        self._insert(ScanAsset.__table__, rows, "scan assets")

    def _attestations(self, plan: UnitPlan) -> None:
        """Every item of both years, reviewed in the first months of its year."""
        rng, q, rows = self.rng, plan.q, []
        for year in range(self.start.year, self.end.year + 1):
            for item in ITEM_IDS:
                submitted = self._at(date(year, 1, 1)) + timedelta(days=rng.uniform(10, 80))
                reviewed = submitted + timedelta(days=rng.uniform(3, 30))
                if reviewed >= self.now:
                    continue
                r = rng.random()
                rating = "dat" if r < q else "dat_mot_phan" if r < q + 0.5 * (1 - q) else "chua_dat"
                rows.append({"unit_id": plan.id, "item": item, "period": year,
                             "note": "Dữ liệu mô phỏng (khien demo)", "status": "rated", "submitted_by": "demo",
                             "submitted_at": submitted, "rating": rating, "rating_value": RATINGS[rating],
                             "review_comment": None if rating == "dat" else "Minh chứng chưa đầy đủ (mô phỏng)",
                             "reviewed_by": "admin", "reviewed_at": reviewed, "withdrawn_by": None,
                             "withdrawn_at": None})
        self._insert(Attestation.__table__, rows, "attestations")
