"""The measured indicators (A1–A8) of every unit as of the end of one local day.

Each indicator is one or two aggregate queries over all units at once (set-based SQL, the same on
SQLite and PostgreSQL) that return one row per host; the per-host contributions are summed per unit
here and also kept, because they are the evidence behind every lost point (``explain``) and what
the inputs hash of a snapshot is computed from. The window of "the month" is the 30 days up to the
end of the day. Host level and exposure are today's: the hosts table keeps no history of them.

Times are the server's wherever a host's clock could move a value: a host "reported on day D" when
the server received it that day (``activity``), and alerts count by when the server raised them.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

from sqlalchemy import ColumnElement, and_, case, func, or_, select, true
from sqlmodel import Session

from collector.alerts.models import Alert
from collector.compliance.models import CheckResultRow
from collector.exceptions.models import RiskException
from collector.findings.models import Finding
from collector.hosts.models import Host
from collector.incidents.models import Incident
from collector.incidents.service import on_time
from collector.scans.models import ScanAsset
from collector.scoring.activity import LOCAL_TZ
from collector.scoring.models import HostActivity
from collector.units.models import Unit
from rules.scoring.model import ScoringModel

WINDOW_DAYS = 30
VULN_KINDS = ("vulnerability", "patch")
WEB_CLASSES = ("P0", "P1", "P2")  # a web component counts as vulnerable from "high" up
SCORED_CLASSES = ("P0", "P1", "P2", "P3")
ANTIMALWARE = {"installed": "mal_lnx_antimalware_installed", "running": "mal_lnx_antimalware_running",
               "current": "mal_lnx_signatures_current"}
LOGGING = {"audit": "log_lnx_auditd_running", "retention": "log_lnx_retention", "ntp": "time_lnx_synchronized",
           "ntp_offset": "time_lnx_offset_small"}
DEFACEMENT_RULE = "file_lnx_web_root_change"
# A8: a high/critical alert still open this many days after it was created is no longer "handled"
# (the model YAML has no closing deadline; one week for both severities, stated in docs/scoring.md).
A8_CLOSE_DAYS = 7


def end_of_day(day: date) -> datetime:
    """The instant a day's values are taken at: the next local midnight, in UTC."""
    return datetime.combine(day + timedelta(days=1), dtime(0), LOCAL_TZ).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Window:
    day: date
    at: datetime  # end of the day (exclusive)
    start: datetime  # WINDOW_DAYS earlier
    first_day: date
    units: frozenset[int] | None = None  # only these units (one unit's explanation), None: all

    @classmethod
    def of(cls, day: date, units: frozenset[int] | None = None) -> Window:
        at = end_of_day(day)
        return cls(day=day, at=at, start=at - timedelta(days=WINDOW_DAYS),
                   first_day=day - timedelta(days=WINDOW_DAYS - 1), units=units)

    def only(self, unit_column) -> ColumnElement[bool]:
        """The SQL condition keeping this window's units (every query filters, so one unit costs little)."""
        return true() if self.units is None else unit_column.in_(self.units)


@dataclass(slots=True)
class Measure:
    """One indicator of one unit: value 0–100 (None: nothing measurable) and how it was reached."""

    numerator: float = 0.0
    denominator: float = 0.0
    value: float | None = None
    value_without_exceptions: float | None = None
    # (host id or address, weight, score 0–1, detail) — the evidence, and what the inputs hash covers
    parts: list[tuple] = field(default_factory=list)

    def inputs_hash(self) -> str:
        text = json.dumps(sorted(self.parts, key=lambda p: str(p[0])), default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class HostInfo:
    unit_id: int
    weight: float
    internet_facing: bool
    first_day: date


def hosts_at(session: Session, model: ScoringModel, window: Window) -> dict[int, HostInfo]:
    """Every host of the window's units enrolled before the end of the day, with its asset weight."""
    rows = session.execute(select(Host.id, Host.unit_id, Host.security_level, Host.internet_facing,
                                  Host.first_seen).where(Host.first_seen < window.at, window.only(Host.unit_id)))
    return {hid: HostInfo(unit, model.asset_weight(level=level, internet_facing=bool(exposed)), bool(exposed),
                          first_seen.astimezone(LOCAL_TZ).date())
            for hid, unit, level, exposed, first_seen in rows}


def _weighted(parts_by_unit: dict[int, list[tuple]], *, empty: float | None = None) -> dict[int, Measure]:
    """Σ w·score / Σ w per unit from (id, w, score, detail) parts."""
    out: dict[int, Measure] = {}
    for unit_id, parts in parts_by_unit.items():
        num = sum(w * s for _, w, s, _ in parts)
        den = sum(w for _, w, _, _ in parts)
        out[unit_id] = Measure(numerator=num, denominator=den, value=100 * num / den if den else empty, parts=parts)
    return out


# ---- A1 monitoring coverage ------------------------------------------------------------------------

def a1(session: Session, model: ScoringModel, window: Window, hosts: dict[int, HostInfo]) -> dict[int, Measure]:
    p = model.indicators["A1"].params
    rows = session.execute(
        select(HostActivity.host_id, func.count(), func.max(HostActivity.day))
        .where(HostActivity.day >= window.first_day, HostActivity.day <= window.day,
               window.only(HostActivity.unit_id))
        .group_by(HostActivity.host_id))
    reported = {hid: (days, last) for hid, days, last in rows}
    parts: dict[int, list[tuple]] = defaultdict(list)
    for hid, info in hosts.items():
        days, last = reported.get(hid, (0, None))
        expected = min(WINDOW_DAYS, (window.day - info.first_day).days + 1)
        # "in the last 24 h" at day granularity: reported on the day itself
        monitored = days * 100 >= p["min_reporting_days_pct"] * expected and last == window.day
        parts[info.unit_id].append((f"host:{hid}", info.weight, 1.0 if monitored else 0.0,
                                    {"days": days, "expected": expected, "last": str(last) if last else None}))
    if p["include_unmanaged"]:
        # Addresses scans saw answering that no agent reports: servers the unit runs without monitoring.
        unmanaged = session.execute(select(ScanAsset.unit_id, ScanAsset.address).where(
            ScanAsset.host_id.is_(None), ScanAsset.last_up >= window.start, ScanAsset.first_seen < window.at,
            window.only(ScanAsset.unit_id)))
        weight = model.asset_weight(level=None, internet_facing=False)
        for unit_id, address in unmanaged:
            parts[unit_id].append((f"addr:{address}", weight, 0.0, {"unmanaged": True}))
    return _weighted(parts)


# ---- A2 vulnerability remediation on time ------------------------------------------------------------

def a2(session: Session, model: ScoringModel, window: Window, hosts: dict[int, HostInfo]) -> dict[int, Measure]:
    p = model.indicators["A2"].params
    s = case(*((Finding.finding_class == c, p[f"s_{c}"]) for c in SCORED_CLASSES), else_=0)
    in_window = and_(Finding.kind.in_(VULN_KINDS), Finding.host_id.is_not(None), Finding.first_seen < window.at,
                     Finding.finding_class.in_(SCORED_CLASSES), window.only(Finding.unit_id),
                     or_(Finding.fixed_at.is_(None), Finding.fixed_at >= window.start))
    # Overdue at some time in the window: due before its end and not fixed by the due date.
    overdue = and_(Finding.due_at < window.at, or_(Finding.fixed_at.is_(None), Finding.fixed_at > Finding.due_at))
    open_p0_overdue = and_(overdue, Finding.finding_class == "P0", Finding.fixed_at.is_(None))
    rows = session.execute(
        select(Finding.host_id, func.sum(s), func.sum(case((overdue, s), else_=0)),
               func.count(), func.sum(case((overdue, 1), else_=0)), func.max(case((open_p0_overdue, 1), else_=0)))
        .where(in_window).group_by(Finding.host_id))
    per_host = {hid: [float(total or 0), float(late or 0), int(n), int(n_late or 0), bool(p0)]
                for hid, total, late, n, n_late, p0 in rows}
    accepted, capped_units = _accepted(session, window, in_window, overdue, s)
    parts: dict[int, list[tuple]] = defaultdict(list)
    raw: dict[int, list[tuple]] = defaultdict(list)
    exposed_p0: set[int] = set()
    for hid, (total, late, n, n_late, p0) in per_host.items():
        info = hosts.get(hid)
        if info is None or total <= 0:
            continue
        forgiven = accepted.get(hid, 0.0)
        detail = {"findings": n, "overdue": n_late, "severity_sum": total, "overdue_severity": late}
        parts[info.unit_id].append((f"host:{hid}", info.weight * total, 1 - (late - forgiven) / total,
                                    detail | {"accepted_severity": forgiven}))
        raw[info.unit_id].append((f"host:{hid}", info.weight * total, 1 - late / total, detail))
        if p0 and info.internet_facing:
            exposed_p0.add(info.unit_id)
    with_exc, without = _weighted(parts, empty=100.0), _weighted(raw, empty=100.0)
    for unit_id in {i.unit_id for i in hosts.values()} | set(with_exc):
        m = with_exc.setdefault(unit_id, Measure(value=100.0))
        m.value_without_exceptions = without[unit_id].value if unit_id in without else 100.0
        caps = []
        if unit_id in exposed_p0:
            caps.append(("internet-facing P0 overdue", p["cap_exposed_p0_overdue"]))
        if unit_id in capped_units:
            caps.append(("P0/P1 exception open", p["cap_p0_p1_exception"]))
        for reason, cap in caps:
            if m.value is not None and m.value > cap:
                m.value = cap
                m.parts.append(("cap", 0.0, 0.0, {"reason": reason, "cap": cap}))
        if unit_id in exposed_p0 and m.value_without_exceptions is not None:
            m.value_without_exceptions = min(m.value_without_exceptions, p["cap_exposed_p0_overdue"])
    return with_exc


def _accepted(session: Session, window: Window, in_window, overdue, s) -> tuple[dict[int, float], set[int]]:
    """Overdue severity that active exceptions cover, per host; and units with a P0/P1 exception in force.

    Exceptions are few, so the findings they might cover are read and matched here (scope host, unit
    and its sub-units, or all) rather than joined in SQL.
    """
    active = session.execute(select(RiskException.target, RiskException.scope, RiskException.unit_id,
                                    RiskException.host_id).where(
        RiskException.target_kind == "finding", RiskException.created_at < window.at,
        RiskException.expires_at > window.at,
        or_(RiskException.revoked_at.is_(None), RiskException.revoked_at > window.at))).all()
    if not active:
        return {}, set()
    parents = dict(session.execute(select(Unit.id, Unit.parent_id)).all())

    def chain(unit_id: int) -> set[int]:
        seen: set[int] = set()
        while unit_id is not None and unit_id not in seen:
            seen.add(unit_id)
            unit_id = parents.get(unit_id)
        return seen

    by_rule: dict[str, list[tuple[str, int | None, int | None]]] = defaultdict(list)
    for target, scope, unit_id, host_id in active:
        by_rule[target].append((scope, unit_id, host_id))
    rows = session.execute(select(Finding.host_id, Finding.unit_id, Finding.rule, Finding.finding_class,
                                  case((overdue, s), else_=0), Finding.fixed_at)
                           .where(in_window, Finding.rule.in_(list(by_rule))))
    accepted: dict[int, float] = defaultdict(float)
    capped: set[int] = set()
    for host_id, unit_id, rule, cls, late, fixed_at in rows:
        units = chain(unit_id)
        if not any(sc == "all" or (sc == "host" and h == host_id) or (sc == "unit" and u in units)
                   for sc, u, h in by_rule[rule]):
            continue
        accepted[host_id] += float(late or 0)
        if cls in ("P0", "P1") and fixed_at is None:
            capped.add(unit_id)
    return accepted, capped


# ---- A3 hardening, A4 malware protection, A5 logging and time ----------------------------------------

def _valid_checks(window: Window):
    c = CheckResultRow
    return and_(c.valid_from < window.at, or_(c.valid_to.is_(None), c.valid_to >= window.at), window.only(c.unit_id))


def a3(session: Session, model: ScoringModel, window: Window, hosts: dict[int, HostInfo]) -> dict[int, Measure]:
    c = CheckResultRow
    cap = model.indicators["A3"].params["critical_fail_cap"]
    rows = session.execute(
        select(c.host_id, func.sum(case((c.status == "pass", 1), else_=0)),
               func.sum(case((c.status.in_(("pass", "fail", "error")), 1), else_=0)),
               func.max(case((and_(c.critical == true(), c.status == "fail"), 1), else_=0)))
        .where(_valid_checks(window)).group_by(c.host_id))
    parts: dict[int, list[tuple]] = defaultdict(list)
    for hid, passed, applicable, critical in rows:
        info = hosts.get(hid)
        if info is None or not applicable:
            continue
        score = passed / applicable
        if critical:
            score = min(score, cap)
        detail = {"passed": int(passed), "applicable": int(applicable), "critical_fail": bool(critical)}
        parts[info.unit_id].append((f"host:{hid}", info.weight, score, detail))
    return _weighted(parts)


def _check_matrix(session: Session, window: Window, checks: dict[str, str]) -> dict[int, dict[str, str | None]]:
    """Per host, the status at the end of the day of each named check (one row per host)."""
    c = CheckResultRow
    columns = [func.max(case((c.check_id == check_id, c.status), else_=None)).label(name)
               for name, check_id in checks.items()]
    rows = session.execute(select(c.host_id, *columns).where(_valid_checks(window), c.check_id.in_(checks.values()))
                           .group_by(c.host_id))
    return {r[0]: dict(zip(checks, r[1:], strict=True)) for r in rows}


def a4(session: Session, model: ScoringModel, window: Window, hosts: dict[int, HostInfo]) -> dict[int, Measure]:
    stale = model.indicators["A4"].params["stale_credit"]
    status = _check_matrix(session, window, ANTIMALWARE)
    parts: dict[int, list[tuple]] = defaultdict(list)
    for hid, info in hosts.items():
        got = status.get(hid, {})
        if got.get("running") == "pass" and got.get("current") == "pass":
            score = 1.0
        elif got.get("installed") == "pass" or got.get("running") == "pass":
            score = stale  # installed, but not running or with old signatures
        else:
            score = 0.0  # nothing installed, or nothing reported
        parts[info.unit_id].append((f"host:{hid}", info.weight, score, got))
    return _weighted(parts)


def a5(session: Session, model: ScoringModel, window: Window, hosts: dict[int, HostInfo]) -> dict[int, Measure]:
    shares = model.indicators["A5"].components
    status = _check_matrix(session, window, LOGGING)
    # "Forwarding seen by the collector in 24 h": the agent's channel (which carries the logs) reported today.
    seen_today = {hid for (hid,) in session.execute(select(HostActivity.host_id).where(
        HostActivity.day == window.day, window.only(HostActivity.unit_id)))}
    parts: dict[int, list[tuple]] = defaultdict(list)
    for hid, info in hosts.items():
        got = status.get(hid, {})
        ntp = got.get("ntp") == "pass" and got.get("ntp_offset") in ("pass", None)
        have = {"audit": got.get("audit") == "pass", "forwarding": hid in seen_today,
                "retention": got.get("retention") == "pass", "ntp": ntp}
        score = sum(shares[k] for k, ok in have.items() if ok)
        parts[info.unit_id].append((f"host:{hid}", info.weight, score, have))
    return _weighted(parts)


# ---- A7 external exposure, A8 detection and incident handling -----------------------------------------

def a7(session: Session, model: ScoringModel, window: Window, hosts: dict[int, HostInfo]) -> dict[int, Measure]:
    p = model.indicators["A7"].params
    f = Finding
    penalty = case((f.rule.like("exposed-service:%"), p["risky_service"]),
                   (f.rule == "ssh-password-auth", p["ssh_password"]),
                   (f.rule.in_(("tls-weak-protocol", "tls-expired-certificate")), p["weak_tls"]), else_=0)
    open_at = and_(f.first_seen < window.at, or_(f.fixed_at.is_(None), f.fixed_at >= window.at))
    exposed_ids = [hid for hid, info in hosts.items() if info.internet_facing]
    patterns = model.indicators["A7"].web_components
    web = or_(*(f.location.like(_like(pattern), escape="\\") for pattern in patterns)) if patterns else None
    penalties: dict[int, float] = defaultdict(float)
    findings: dict[int, int] = defaultdict(int)
    for chunk in _chunks(exposed_ids):
        for hid, total, n in session.execute(select(f.host_id, func.sum(penalty), func.count()).where(
                f.kind == "exposure", f.host_id.in_(chunk), open_at).group_by(f.host_id)):
            penalties[hid] += float(total or 0)
            findings[hid] += int(n)
        if web is not None:
            for (hid,) in session.execute(select(f.host_id).distinct().where(
                    f.kind.in_(VULN_KINDS), f.finding_class.in_(WEB_CLASSES), f.host_id.in_(chunk), open_at, web)):
                penalties[hid] += p["vulnerable_web"]
                findings[hid] += 1
        # By when the server raised the alert, not the host's clock (first_seen): a host whose clock
        # is off cannot move a defacement out of the month, and a later recomputation sees only
        # what was known by the end of the day (as A8 does).
        for (hid,) in session.execute(select(Alert.host_id).distinct().where(
                Alert.rule_id == DEFACEMENT_RULE, Alert.host_id.in_(chunk), Alert.created_at >= window.start,
                Alert.created_at < window.at)):
            penalties[hid] += p["defacement"]
    parts: dict[int, list[tuple]] = defaultdict(list)
    for hid in exposed_ids:
        info = hosts[hid]
        score = max(0.0, 100 - penalties.get(hid, 0.0)) / 100
        parts[info.unit_id].append((f"host:{hid}", info.weight, score,
                                    {"penalty": penalties.get(hid, 0.0), "findings": findings.get(hid, 0)}))
    # A unit with nothing internet-facing exposes nothing: full marks, not "no data".
    out = _weighted(parts)
    for unit_id in {i.unit_id for i in hosts.values()} - set(out):
        out[unit_id] = Measure(value=100.0)
    return out


def _like(pattern: str) -> str:
    """A web-component pattern (``php*``) as a LIKE pattern; ``_`` and ``%`` in names are literal."""
    return pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")


def a8(session: Session, model: ScoringModel, window: Window, hosts: dict[int, HostInfo]) -> dict[int, Measure]:
    shares = model.indicators["A8"].components
    p = model.indicators["A8"].params
    counts = _alerts_handled(session, window, ack_hours=p["acknowledge_hours"])
    # Serious incidents detected in the window and on record by the end of the day (a month recomputed
    # later sees what was known then), reported on time as of the end of the day (few rows).
    reported: dict[int, list[bool]] = defaultdict(list)
    for incident in session.scalars(select(Incident).where(Incident.detected_at >= window.start,
                                                           Incident.detected_at < window.at,
                                                           Incident.created_at < window.at,
                                                           window.only(Incident.unit_id))):
        verdict = on_time(incident, at=window.at, initial_hours=p["initial_report_hours"],
                          full_hours=p["full_report_hours"])
        if verdict is not None:
            reported[incident.unit_id].append(verdict)
    out: dict[int, Measure] = {}
    for unit_id in {i.unit_id for i in hosts.values()} | set(counts) | set(reported):
        n, handled = counts.get(unit_id, (0, 0))
        alerts_share = handled / n if n else 1.0
        verdicts = reported.get(unit_id, [])
        incidents_share = sum(verdicts) / len(verdicts) if verdicts else 1.0  # none to report: none late
        value = 100 * (shares["alerts_handled"] * alerts_share + shares["incidents_reported"] * incidents_share)
        out[unit_id] = Measure(numerator=handled, denominator=n, value=value,
                               parts=[("alerts", float(n), alerts_share, {"handled": handled}),
                                      ("incidents", float(len(verdicts)), incidents_share,
                                       {"serious": len(verdicts), "on_time": sum(verdicts)})])
    return out


def _alerts_handled(session: Session, window: Window, *, ack_hours: float) -> dict[int, tuple[int, int]]:
    """(high/critical alerts created in the window, how many were handled) per unit, as of ``window.at``.

    Handled: acknowledged within ``ack_hours`` of creation (or not yet due at the end of the day), and
    closed by the end of the day or still open but created less than ``A8_CLOSE_DAYS`` before it.
    Only the first acknowledgement and closing times count (never cleared, and taken as of the end of
    the day), so triage after the day does not change the day's value. Alerts opened as suppressed are
    out: a suppression is an audited triage decision, not a detection left unhandled.
    """
    ack_window = timedelta(hours=ack_hours)
    close_cutoff = window.at - timedelta(days=A8_CLOSE_DAYS)
    out: dict[int, tuple[int, int]] = {}
    rows = session.execute(select(Alert.unit_id, Alert.created_at, Alert.acknowledged_at, Alert.closed_at).where(
        Alert.severity.in_(("high", "critical")), Alert.created_at >= window.start, Alert.created_at < window.at,
        Alert.suppression_id.is_(None), window.only(Alert.unit_id)))
    for unit_id, created, acked, closed in rows:
        acked = acked if acked is not None and acked < window.at else None
        ack_ok = (acked - created <= ack_window) if acked is not None else window.at - created < ack_window
        close_ok = (closed is not None and closed < window.at) or created >= close_cutoff
        n, handled = out.get(unit_id, (0, 0))
        out[unit_id] = (n + 1, handled + int(ack_ok and close_ok))
    return out


def _chunks(ids: list[int], size: int = 900) -> Iterable[list[int]]:
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


MEASURED = {"A1": a1, "A2": a2, "A3": a3, "A4": a4, "A5": a5, "A7": a7, "A8": a8}
