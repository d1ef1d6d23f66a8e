"""Read-only queries behind the host pages that the collector's services do not offer.

Every function is scope-filtered and takes keyword-only arguments; none of them writes. The host
list pages with a keyset (sort value, id) instead of OFFSET, so page 500 of 50,000 hosts costs the
same as page 1, and everything a page shows per host comes from a constant number of grouped
queries over the page's host ids (no query per row).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_
from sqlmodel import Session, select

from collector.agents.models import Agent
from collector.alerts.models import OPEN_STATUSES, Alert
from collector.events.models import Event
from collector.findings.models import Finding
from collector.hosts.models import Host
from collector.scans.models import ScanAsset, ScanHost, ScanPort, ScanRun
from collector.scope import Scope
from collector.types import UTCDateTime
from collector.units import service as units
from collector.units.models import Unit

# ---- the host list ---------------------------------------------------------------------------------

# A host that never reported sorts as if last seen at the epoch: keyset values are then never NULL.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
SEEN = func.coalesce(Host.last_seen, literal(NEVER, UTCDateTime()))
# sort name -> (key expression, descending)
SORTS: Mapping[str, tuple[Any, bool]] = {
    "hostname": (Host.hostname, False),
    "recent": (SEEN, True),    # most recently seen first
    "oldest": (SEEN, False),   # longest silent first: the ones to chase
}
LEVEL_CHOICES = ("1", "2", "3", "4", "5", "none")
FACING_CHOICES = ("yes", "no")
MAX_TEXT = 255
OPEN_FINDING = ("open", "reopened")
MAX_ID = 2**63


class BadCursor(ValueError):
    """A page link that was tampered with or belongs to another sort order."""


@dataclass(frozen=True, slots=True)
class HostFilter:
    unit_code: str | None = None
    text: str | None = None
    stale_only: bool = False
    level: str | None = None  # "1".."5" | "none" (not declared)
    internet_facing: bool | None = None
    sort: str = "hostname"


@dataclass(frozen=True, slots=True)
class HostRow:
    host: Host
    unit_code: str
    stale: bool
    open_findings: int = 0
    overdue_findings: int = 0
    open_alerts: int = 0


@dataclass(slots=True)
class HostPage:
    rows: list[HostRow]
    next_cursor: str | None  # the page after the last row shown
    prev_cursor: str | None  # the page before the first row shown
    total: int
    stale_total: int


def encode_cursor(sort: str, value: Any, host_id: int) -> str:
    """An opaque page token: the sort it belongs to, the boundary row's sort value and id."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC).isoformat()
    raw = json.dumps([sort, value, host_id], ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _is_id(value: Any) -> bool:
    """A row id a page token may carry: an integer within BIGINT, so the database never sees an overflow."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_ID


def decode_cursor(token: str, *, sort: str) -> tuple[Any, int]:
    """The (sort value, host id) of a page token, checked against the current sort; BadCursor otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        kind, value, host_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadCursor("unreadable page token") from exc
    if kind != sort or not _is_id(host_id):
        raise BadCursor("page token of another sort order")
    if sort == "hostname":
        if not isinstance(value, str):
            raise BadCursor("page token value is not a hostname")
        return value, host_id
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise BadCursor("page token value is not a time")
    return when, host_id


def _filtered(query, *, scope: Scope, session: Session, filters: HostFilter, stale_before: datetime):
    query = query.where(scope.where(Host.unit_id))
    if filters.unit_code:
        unit = session.exec(select(Unit).where(Unit.code == filters.unit_code)).first()
        # A unit outside the scope yields nothing (the scope condition above still applies).
        ids = units.subtree_ids(session, unit_id=unit.id) if unit is not None else frozenset()
        query = query.where(Host.unit_id.in_(ids) if ids else Host.id.is_(None))
    if filters.text:
        needle = filters.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(Host.hostname).like(f"%{needle}%", escape="\\"))
    if filters.stale_only:
        query = query.where(or_(Host.last_seen.is_(None), Host.last_seen < stale_before))
    if filters.level == "none":
        query = query.where(Host.security_level.is_(None))
    elif filters.level:
        query = query.where(Host.security_level == int(filters.level))
    if filters.internet_facing is not None:
        query = query.where(Host.internet_facing.is_(filters.internet_facing))
    return query


def _after(key: Any, descending: bool, value: Any, host_id: int) -> ColumnElement[bool]:
    """Rows strictly after (value, id) in the order (key, id), both ascending or both descending."""
    if descending:
        return or_(key < value, and_(key == value, Host.id < host_id))
    return or_(key > value, and_(key == value, Host.id > host_id))


def host_page(session: Session, *, scope: Scope, filters: HostFilter, now: datetime, stale_after: timedelta,
              limit: int, after: str | None = None, before: str | None = None) -> HostPage:
    """One page of hosts: ``after`` continues forwards from a token, ``before`` goes back from one."""
    key, descending = SORTS[filters.sort]
    stale_before = now - stale_after
    # Two steps: the keyset query sorts narrow (id, key) rows only; sorting whole host rows (JSON
    # columns and all) cost ten times more on SQLite with 50,000 hosts. Then the page's rows by id.
    query = _filtered(select(Host.id, key), scope=scope, session=session, filters=filters,
                      stale_before=stale_before)
    backwards = before is not None and after is None
    if after is not None:
        query = query.where(_after(key, descending, *decode_cursor(after, sort=filters.sort)))
    elif before is not None:
        query = query.where(_after(key, not descending, *decode_cursor(before, sort=filters.sort)))
    # Going backwards reads the previous rows in reverse order, then flips them back.
    reverse = descending != backwards
    order = (key.desc(), Host.id.desc()) if reverse else (key.asc(), Host.id.asc())
    keys = list(session.exec(query.order_by(*order).limit(limit + 1)).all())
    more = len(keys) > limit  # one extra row says whether a further page exists, without COUNT
    keys = keys[:limit]
    if backwards:
        keys.reverse()
    loaded = {host.id: (host, code) for host, code in session.exec(
        select(Host, Unit.code).join(Unit, Unit.id == Host.unit_id).where(Host.id.in_([k[0] for k in keys])))}
    counts = _open_counts(session, host_ids=[k[0] for k in keys], now=now)
    rows = [HostRow(host, code, host.last_seen is None or host.last_seen < stale_before,
                    *counts.get(host.id, (0, 0, 0)))
            for host, code in (loaded[k[0]] for k in keys if k[0] in loaded)]
    has_next = more if not backwards else True
    has_prev = (after is not None) if not backwards else more
    next_cursor = encode_cursor(filters.sort, keys[-1][1], keys[-1][0]) if keys and has_next else None
    prev_cursor = encode_cursor(filters.sort, keys[0][1], keys[0][0]) if keys and has_prev else None
    total, stale_total = _totals(session, scope=scope, filters=filters, stale_before=stale_before)
    return HostPage(rows=rows, next_cursor=next_cursor, prev_cursor=prev_cursor, total=total,
                    stale_total=stale_total)


def _totals(session: Session, *, scope: Scope, filters: HostFilter, stale_before: datetime) -> tuple[int, int]:
    """How many hosts match the filters and how many of those are out of contact (one aggregate query)."""
    stale = func.sum(case((or_(Host.last_seen.is_(None), Host.last_seen < stale_before), 1), else_=0))
    query = _filtered(select(func.count(Host.id), stale), scope=scope, session=session, filters=filters,
                      stale_before=stale_before)
    total, stale_total = session.exec(query).one()
    return int(total or 0), int(stale_total or 0)


def _open_counts(session: Session, *, host_ids: Sequence[int], now: datetime) -> dict[int, tuple[int, int, int]]:
    """host id -> (open findings, overdue findings, open alerts): two grouped queries for the page."""
    if not host_ids:
        return {}
    out: dict[int, list[int]] = {hid: [0, 0, 0] for hid in host_ids}
    overdue = func.sum(case((Finding.due_at < now, 1), else_=0))
    for hid, total, late in session.exec(select(Finding.host_id, func.count(), overdue).where(
            Finding.host_id.in_(host_ids), Finding.status.in_(OPEN_FINDING)).group_by(Finding.host_id)):
        out[hid][0], out[hid][1] = int(total), int(late or 0)
    for hid, total in session.exec(select(Alert.host_id, func.count()).where(
            Alert.host_id.in_(host_ids), Alert.status.in_(OPEN_STATUSES)).group_by(Alert.host_id)):
        out[hid][2] = int(total)
    return {hid: (a, b, c) for hid, (a, b, c) in out.items()}


# ---- one host: change events, facts ---------------------------------------------------------------

@dataclass(slots=True)
class ChangePage:
    events: list[Event]
    next_cursor: str | None  # older events


def encode_event_cursor(event: Event) -> str:
    raw = json.dumps([event.ts.astimezone(UTC).isoformat(), event.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_event_cursor(token: str) -> tuple[datetime, int]:
    try:
        ts, event_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        when = datetime.fromisoformat(ts)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadCursor("unreadable page token") from exc
    if when.tzinfo is None or not _is_id(event_id):
        raise BadCursor("unreadable page token")
    return when, event_id


def change_page(session: Session, *, scope: Scope, host_id: int, types: Sequence[str], limit: int,
                before: str | None = None, until: datetime | None = None) -> ChangePage:
    """A host's change events of ``types``, newest first, ``limit`` at a time (keyset on ts, id)."""
    query = select(Event).where(scope.where(Event.unit_id), Event.host_id == host_id, Event.type.in_(list(types)))
    if until is not None:
        query = query.where(Event.ts <= until)
    if before is not None:
        ts, event_id = decode_event_cursor(before)
        query = query.where(or_(Event.ts < ts, and_(Event.ts == ts, Event.id < event_id)))
    rows = list(session.exec(query.order_by(Event.ts.desc(), Event.id.desc()).limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return ChangePage(events=rows, next_cursor=encode_event_cursor(rows[-1]) if more and rows else None)


@dataclass(frozen=True, slots=True)
class FactKind:
    name: str
    available: bool
    values: list[tuple[str, str]]  # key -> value shown as compact JSON text (escaped by the template)


@dataclass(frozen=True, slots=True)
class Facts:
    collected_at: datetime
    kinds: list[FactKind]
    errors: list[str]


def latest_facts(session: Session, *, scope: Scope, host_id: int, until: datetime | None = None) -> Facts | None:
    """The host's newest ``facts.snapshot`` (at or before ``until``), flattened one level for display."""
    query = select(Event).where(scope.where(Event.unit_id), Event.host_id == host_id,
                                Event.type == "facts.snapshot")
    if until is not None:
        query = query.where(Event.ts <= until)
    event = session.exec(query.order_by(Event.ts.desc(), Event.id.desc()).limit(1)).first()
    if event is None:
        return None
    data = event.data if isinstance(event.data, dict) else {}
    kinds = data.get("kinds") if isinstance(data.get("kinds"), dict) else {}
    out = []
    for name in sorted(kinds):
        facts = kinds[name] if isinstance(kinds[name], dict) else {}
        values = [(str(key), _as_text(value)) for key, value in sorted(facts.items()) if key != "available"]
        out.append(FactKind(name=str(name), available=facts.get("available") is True, values=values))
    errors = [str(e) for e in data.get("errors") or [] if e is not None] if isinstance(data.get("errors"), list) else []
    return Facts(collected_at=event.ts, kinds=out, errors=errors)


def _as_text(value: Any) -> str:
    # Plain text, never markup: the template autoescapes it like any other agent value.
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


# ---- one host: scans, agents -------------------------------------------------------------------------

@dataclass(slots=True)
class ScannedAddress:
    row: ScanHost
    run: ScanRun | None
    ports: list[ScanPort] = field(default_factory=list)


def host_addresses(interfaces: Sequence[Any]) -> list[str]:
    """The addresses a host reports on its interfaces (the scanner matches managed hosts the same way)."""
    found: list[str] = []
    for row in interfaces:
        if not isinstance(row, dict) or not isinstance(row.get("addresses"), list):
            continue
        for addr in row["addresses"]:
            value = str(addr.get("address") or "") if isinstance(addr, dict) else ""
            value = value.split("%", 1)[0]
            if value and value not in found and len(value) <= 64:
                found.append(value)
    return found


def _unit_and_ancestors(session: Session, *, unit_id: int) -> list[int]:
    """A unit and the units above it: a province's scan also covers its departments' addresses."""
    chain, current, seen = [], unit_id, set()
    while current is not None and current not in seen and len(chain) < 16:
        seen.add(current)
        chain.append(current)
        current = session.exec(select(Unit.parent_id).where(Unit.id == current)).first()
    return chain


def latest_scans(session: Session, *, scope: Scope, host: Host, addresses: Sequence[str]) -> list[ScannedAddress]:
    """For each of the host's addresses, the newest scan result (state, ports) a visible unit recorded."""
    unit_ids = [u for u in _unit_and_ancestors(session, unit_id=host.unit_id) if scope.allows(u)]
    if not addresses or not unit_ids:
        return []
    newest = (select(ScanHost.address, func.max(ScanHost.run_id).label("run_id"))
              .where(ScanHost.unit_id.in_(unit_ids), ScanHost.address.in_(list(addresses)),
                     or_(ScanHost.host_id == host.id, ScanHost.host_id.is_(None)))
              .group_by(ScanHost.address).subquery())
    rows = session.exec(select(ScanHost, ScanRun).join(
        newest, and_(ScanHost.address == newest.c.address, ScanHost.run_id == newest.c.run_id))
        .outerjoin(ScanRun, ScanRun.id == ScanHost.run_id)
        .where(ScanHost.unit_id.in_(unit_ids)).order_by(ScanHost.address, ScanHost.id.desc())).all()
    out: dict[str, ScannedAddress] = {}
    for row, run in rows:
        out.setdefault(row.address, ScannedAddress(row=row, run=run))
    if out:
        by_row = {item.row.id: item for item in out.values()}
        for port in session.exec(select(ScanPort).where(ScanPort.scan_host_id.in_(list(by_row)))
                                 .order_by(ScanPort.proto, ScanPort.port)):
            by_row[port.scan_host_id].ports.append(port)
    return [out[a] for a in addresses if a in out]


def unmanaged_assets(session: Session, *, scope: Scope, unit_id: int, limit: int = 50) -> list[ScanAsset]:
    """Addresses in the host's unit that answer scans but have no enrolled agent, most recently up first."""
    if not scope.allows(unit_id):
        return []
    return list(session.exec(select(ScanAsset).where(
        ScanAsset.unit_id == unit_id, ScanAsset.host_id.is_(None), ScanAsset.last_up.is_not(None))
        .order_by(ScanAsset.last_up.desc(), ScanAsset.id).limit(limit)).all())


def agents_of(session: Session, *, scope: Scope, host_id: int) -> list[Agent]:
    """The host's agents, the live one first, then revoked ones newest first."""
    return list(session.exec(select(Agent).where(Agent.host_id == host_id, scope.where(Agent.unit_id))
                             .order_by(Agent.revoked, Agent.enrolled_at.desc())).all())


# ---- one host: check results with the rules' text ----------------------------------------------------

STATUS_ORDER = {"fail": 0, "error": 1, "accepted": 2, "pass": 3, "not_applicable": 4}
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


@dataclass(frozen=True, slots=True)
class CheckLine:
    result: Any  # collector.compliance.models.CheckResultPublic
    title: str
    remediation: str


def _text(texts: Mapping[str, str] | None, lang: str) -> str:
    """A rule text in the viewer's language, else Vietnamese, else English, else nothing."""
    texts = texts or {}
    return texts.get(lang) or texts.get("vi") or texts.get("en") or ""


def check_lines(results: Sequence[Any], *, checks: Mapping[str, Any], lang: str) -> list[CheckLine]:
    """Results with their check's title and remediation, what needs work first (failed, critical, severe)."""
    lines = []
    for result in results:
        check = checks.get(result.check_id)
        lines.append(CheckLine(result=result, title=_text(check.title if check else None, lang),
                               remediation=_text(check.remediation if check else None, lang)))
    lines.sort(key=lambda line: (STATUS_ORDER.get(line.result.status, 9), not line.result.critical,
                                 SEVERITY_ORDER.get(line.result.severity, 9), line.result.check_id))
    return lines
