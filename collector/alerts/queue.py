"""The alert queue: filters, three sort orders with keyset pagination (no OFFSET), counts per severity.

A cursor is the sort value and id of the last row shown; the next page is every row strictly after
it in (sort value, id) order, so alerts arriving meanwhile never shift or repeat rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import String, and_, case, cast, func, or_
from sqlmodel import Session, select

from collector.alerts.models import CLOSED_STATUSES, OPEN_STATUSES, SEVERITIES, STATUSES, SUPPRESSED, Alert
from collector.errors import InvalidInput
from collector.hosts.models import Host
from collector.scope import Scope
from collector.units import service as units

SORTS = ("newest", "severity", "last_seen")
STATUS_GROUPS = {"open": OPEN_STATUSES, "closed": CLOSED_STATUSES}
MAX_PAGE = 500
MAX_QUERY_CHARS = 200
SEVERITY_RANK = case({name: rank for rank, name in enumerate(SEVERITIES)}, value=Alert.severity, else_=-1)


@dataclass(frozen=True, slots=True)
class AlertFilter:
    unit: str | None = None  # unit code: that unit and its sub-units
    host_id: int | None = None
    rule_id: str | None = None
    severity: str | None = None
    status: str | None = None  # a status, "open", "closed"; None: everything but suppressed
    since: datetime | None = None  # last seen at or after
    until: datetime | None = None  # first seen before
    q: str | None = None  # free text: rule id, host name, group values
    assignee: str | None = None


@dataclass(frozen=True, slots=True)
class AlertPage:
    items: list[Alert]
    next_cursor: str | None


def _like(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, its own % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _free_text(q: str):
    needle = q.lower()
    # Group values are stored as JSON text: SQLite keeps non-ASCII escaped (\u1ea1), PostgreSQL plain.
    escaped = json.dumps(needle)[1:-1]
    group_text = func.lower(cast(Alert.group, String))
    hosts = select(Host.id).where(func.lower(Host.hostname).like(_like(needle), escape="\\"))
    return or_(func.lower(Alert.rule_id).like(_like(needle), escape="\\"),
               Alert.host_id.in_(hosts),
               group_text.like(_like(needle), escape="\\"),
               group_text.like(_like(escaped), escape="\\"))


def _conditions(session: Session, *, scope: Scope, filters: AlertFilter, with_status: bool = True) -> list:
    conds = [scope.where(Alert.unit_id)]
    if filters.unit:
        unit = units.get_visible(session, scope=scope, code=filters.unit)
        conds.append(Alert.unit_id.in_(units.subtree_ids(session, unit_id=unit.id)))
    if filters.host_id is not None:
        conds.append(Alert.host_id == filters.host_id)
    if filters.rule_id:
        conds.append(Alert.rule_id == filters.rule_id)
    if filters.severity is not None:
        if filters.severity not in SEVERITIES:
            raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}")
        conds.append(Alert.severity == filters.severity)
    if with_status:
        conds.append(_status_condition(filters.status))
    if filters.since is not None:
        conds.append(Alert.last_seen >= filters.since)
    if filters.until is not None:
        conds.append(Alert.first_seen < filters.until)
    if filters.q:
        if len(filters.q) > MAX_QUERY_CHARS:
            raise InvalidInput(f"search text is at most {MAX_QUERY_CHARS} characters")
        conds.append(_free_text(filters.q.strip()))
    if filters.assignee:
        conds.append(Alert.assignee == filters.assignee)
    return conds


def _status_condition(status: str | None):
    if status is None:
        return Alert.status != SUPPRESSED
    if status in STATUS_GROUPS:
        return Alert.status.in_(STATUS_GROUPS[status])
    if status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join((*STATUS_GROUPS, *STATUSES))}")
    return Alert.status == status


def _sort_key(sort: str):
    return {"newest": None, "severity": SEVERITY_RANK, "last_seen": Alert.last_seen}[sort]


def _cursor_of(alert: Alert, sort: str) -> str:
    if sort == "newest":
        return str(alert.id)
    if sort == "severity":
        return f"{SEVERITIES.index(alert.severity) if alert.severity in SEVERITIES else -1}~{alert.id}"
    return f"{alert.last_seen.isoformat()}~{alert.id}"


def _after(sort: str, cursor: str):
    """The condition "after this cursor" in (sort value desc, id desc) order; bad cursors are refused."""
    try:
        if sort == "newest":
            return Alert.id < int(cursor)
        value, _, raw_id = cursor.rpartition("~")
        last_id = int(raw_id)
        key = _sort_key(sort)
        parsed = int(value) if sort == "severity" else datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput("bad page cursor") from None
    if sort == "last_seen" and parsed.tzinfo is None:
        raise InvalidInput("bad page cursor")
    return or_(key < parsed, and_(key == parsed, Alert.id < last_id))


def page(session: Session, *, scope: Scope, filters: AlertFilter, sort: str = "newest", cursor: str | None = None,
         limit: int = 50) -> AlertPage:
    """One page of the queue in scope; ``next_cursor`` is None on the last page."""
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}")
    limit = max(1, min(limit, MAX_PAGE))
    query = select(Alert).where(*_conditions(session, scope=scope, filters=filters))
    if cursor:
        query = query.where(_after(sort, cursor))
    key = _sort_key(sort)
    order = [Alert.id.desc()] if key is None else [key.desc(), Alert.id.desc()]
    rows = list(session.exec(query.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return AlertPage(items=rows, next_cursor=_cursor_of(rows[-1], sort) if more and rows else None)


COUNT_CAP = 10_000  # counting further than this tells a person nothing and costs a scan of every alert


def severity_counts(session: Session, *, scope: Scope, filters: AlertFilter, cap: int = COUNT_CAP) -> dict[str, int]:
    """Alerts per severity for the filter (every page), each counted up to ``cap`` + 1 (a value over
    ``cap`` means "more than cap"), plus ``suppressed``: the suppressed detections (folded counts) the
    same filter would show without its status. One bounded count per severity, walked on the
    (severity, status, id) index, so a queue of a million alerts answers as fast as one of a hundred."""
    conds = _conditions(session, scope=scope, filters=filters)
    out = dict.fromkeys(SEVERITIES, 0)
    if not scope.all_units or filters.unit or filters.host_id is not None:
        # Narrowed to some units or a host: their own index bounds the work; one grouped count.
        for severity, n in session.exec(select(Alert.severity, func.count()).where(*conds)
                                        .group_by(Alert.severity)):
            out[severity] = min(int(n), cap + 1)
    else:
        for severity in SEVERITIES if filters.severity is None else (filters.severity,):
            first = select(Alert.id).where(*conds, Alert.severity == severity).limit(cap + 1).subquery()
            out[severity] = int(session.exec(select(func.count()).select_from(first)).one())
    held = _conditions(session, scope=scope, filters=replace(filters, status=None), with_status=False)
    out["suppressed"] = int(session.exec(select(func.coalesce(func.sum(Alert.count), 0))
                                         .where(*held, Alert.status == SUPPRESSED)).one())
    return out
