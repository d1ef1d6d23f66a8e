"""Remediation views over open findings: overdue, due soon, by age bucket, by unit.

Counts are one grouped SQL query each; lists are keyset-paginated on (time, id), so a page costs the
same on the first page as on the thousandth. Everything is filtered by the viewer's scope first.
Counts are of open findings by stored status (an exception in force does not hide one here; the
lists mark such findings "accepted").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlmodel import Session

from collector.errors import InvalidInput
from collector.findings import service as findings
from collector.findings.models import REMEDIATION_STATUSES, Finding, FindingPublic
from collector.hosts.models import Host
from collector.scope import Scope
from collector.units.models import Unit

VIEWS = ("overdue", "due_soon", "age", "by_unit")
DUE_SOON = timedelta(days=7)
# Whole days since first detected: 0–30, 31–60, 61–90, more than 90.
BUCKETS = ("0-30", "31-60", "61-90", "90+")
BUCKET_LIMITS = (31, 61, 91)  # a bucket holds ages strictly below its limit in days
OPEN = ("open", "reopened")


@dataclass(frozen=True, slots=True)
class ViewFilter:
    unit_ids: frozenset[int] | None = None  # a unit and its sub-units, already resolved
    finding_class: str | None = None
    remediation_status: str | None = None

    def __post_init__(self) -> None:
        if self.remediation_status is not None and self.remediation_status not in REMEDIATION_STATUSES:
            raise InvalidInput(f"unknown remediation status {self.remediation_status!r}; "
                               f"choose from {', '.join(REMEDIATION_STATUSES)}")


@dataclass(frozen=True, slots=True)
class Page:
    items: list[FindingPublic]
    next_cursor: str | None


def _open(scope: Scope, filters: ViewFilter) -> list:
    conditions = [scope.where(Finding.unit_id), Finding.status.in_(OPEN)]
    if filters.unit_ids is not None:
        conditions.append(Finding.unit_id.in_(filters.unit_ids))
    if filters.finding_class:
        conditions.append(Finding.finding_class == filters.finding_class)
    if filters.remediation_status:
        conditions.append(Finding.remediation_status == filters.remediation_status)
    return conditions


def bucket_of(first_seen: datetime, now: datetime) -> str:
    days = (now - first_seen).days
    for name, limit in zip(BUCKETS, BUCKET_LIMITS, strict=False):
        if days < limit:
            return name
    return BUCKETS[-1]


def _bucket_case(now: datetime):
    """The bucket name as SQL: comparing first_seen with fixed instants keeps the index usable."""
    whens = [(Finding.first_seen > now - timedelta(days=limit), name)
             for name, limit in zip(BUCKETS, BUCKET_LIMITS, strict=False)]
    return case(*whens, else_=BUCKETS[-1])


def _bucket_range(bucket: str, now: datetime) -> list:
    if bucket not in BUCKETS:
        raise InvalidInput(f"unknown age bucket {bucket!r}; choose from {', '.join(BUCKETS)}")
    i = BUCKETS.index(bucket)
    out = []
    if i < len(BUCKET_LIMITS):
        out.append(Finding.first_seen > now - timedelta(days=BUCKET_LIMITS[i]))
    if i > 0:
        out.append(Finding.first_seen <= now - timedelta(days=BUCKET_LIMITS[i - 1]))
    return out


def age_counts(session: Session, *, scope: Scope, filters: ViewFilter, now: datetime) -> dict[str, int]:
    bucket = _bucket_case(now).label("bucket")
    rows = session.execute(select(bucket, func.count()).where(*_open(scope, filters)).group_by(bucket))
    out = dict.fromkeys(BUCKETS, 0)
    for name, total in rows:
        out[name] = int(total)
    return out


@dataclass(frozen=True, slots=True)
class UnitCount:
    unit_id: int
    code: str
    name: str
    open: int
    overdue: int
    due_soon: int


def by_unit(session: Session, *, scope: Scope, filters: ViewFilter, now: datetime) -> list[UnitCount]:
    """Open, overdue and due-soon counts per unit that has open findings, most overdue first."""
    overdue = func.sum(case((Finding.due_at < now, 1), else_=0))
    soon = func.sum(case((and_(Finding.due_at >= now, Finding.due_at < now + DUE_SOON), 1), else_=0))
    rows = session.execute(select(Unit.id, Unit.code, Unit.name, func.count(), overdue, soon)
                           .join(Unit, Unit.id == Finding.unit_id).where(*_open(scope, filters))
                           .group_by(Unit.id, Unit.code, Unit.name))
    out = [UnitCount(unit_id=i, code=c, name=n, open=int(t), overdue=int(o or 0), due_soon=int(s or 0))
           for i, c, n, t, o, s in rows]
    return sorted(out, key=lambda u: (-u.overdue, -u.open, u.code))


def totals(session: Session, *, scope: Scope, filters: ViewFilter, now: datetime) -> dict[str, int]:
    """How many open findings are overdue and due soon (the tabs' badges)."""
    overdue = func.sum(case((Finding.due_at < now, 1), else_=0))
    soon = func.sum(case((and_(Finding.due_at >= now, Finding.due_at < now + DUE_SOON), 1), else_=0))
    total, late, near = session.execute(select(func.count(), overdue, soon).where(*_open(scope, filters))).one()
    return {"open": int(total), "overdue": int(late or 0), "due_soon": int(near or 0)}


def encode_cursor(at: datetime, finding_id: int) -> str:
    return f"{at.isoformat()}~{finding_id}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        at, _, ident = cursor.partition("~")
        return datetime.fromisoformat(at), int(ident)
    except ValueError:
        raise InvalidInput("bad page cursor") from None


def items(session: Session, *, scope: Scope, filters: ViewFilter, view: str, now: datetime, limit: int = 50,
          after: str | None = None, bucket: str | None = None) -> Page:
    """One page of a view's findings: overdue (most overdue first), due soon (soonest first) or one age
    bucket (oldest first)."""
    conditions = _open(scope, filters)
    if view == "overdue":
        key = Finding.due_at
        conditions.append(Finding.due_at < now)
    elif view == "due_soon":
        key = Finding.due_at
        conditions += [Finding.due_at >= now, Finding.due_at < now + DUE_SOON]
    elif view == "age":
        key = Finding.first_seen
        conditions += _bucket_range(bucket or BUCKETS[-1], now)
    else:
        raise InvalidInput(f"unknown view {view!r}; choose from overdue, due_soon, age")
    if after:
        at, last_id = decode_cursor(after)
        conditions.append(or_(key > at, and_(key == at, Finding.id > last_id)))
    rows = session.execute(select(Finding, Unit.code, Host.hostname).join(Unit, Unit.id == Finding.unit_id)
                           .outerjoin(Host, Host.id == Finding.host_id).where(*conditions)
                           .order_by(key, Finding.id).limit(limit + 1)).all()
    page = findings.present(session, [tuple(r) for r in rows[:limit]], now=now)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        next_cursor = encode_cursor(getattr(last, key.key), last.id)
    return Page(items=page, next_cursor=next_cursor)
