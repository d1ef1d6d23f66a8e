"""Alerts: fold detections into alerts (dedupe + suppress window), unit-scoped reads, counts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from collector.alerts.models import MAX_EVENT_IDS, OPEN_STATUSES, STATUSES, Alert, PipelineCursor
from collector.errors import InvalidInput, NotFound
from collector.scope import Scope
from collector.types import utcnow

MAX_PAGE = 500
SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class NewDetection:
    """One rule firing, resolved to the unit and host it belongs to."""

    unit_id: int
    host_id: int | None
    rule_id: str
    severity: str
    key: str  # the engine's dedupe key (rule, host, group values)
    group: dict[str, Any]
    first_ts: datetime
    last_ts: datetime
    event_count: int
    event_ids: tuple[int, ...]
    suppress_s: int


def dedupe_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def record(session: Session, *, detection: NewDetection) -> tuple[Alert, bool]:
    """Fold into the open alert with the same key when within its suppress window, else open a new one.

    Returns the alert and whether it is new.
    """
    digest = dedupe_key(detection.key)
    latest = session.exec(select(Alert).where(Alert.dedupe_key == digest, Alert.unit_id == detection.unit_id,
                                              Alert.status.in_(OPEN_STATUSES))
                          .order_by(Alert.id.desc()).limit(1)).first()
    window = timedelta(seconds=detection.suppress_s)
    if latest is not None and detection.suppress_s > 0 and detection.first_ts <= latest.last_seen + window:
        latest.count += 1
        latest.event_count += detection.event_count
        latest.last_seen = max(latest.last_seen, detection.last_ts)
        latest.event_ids = [*latest.event_ids, *detection.event_ids][-MAX_EVENT_IDS:]
        latest.updated_at = utcnow()
        session.add(latest)
        return latest, False
    alert = Alert(unit_id=detection.unit_id, host_id=detection.host_id, rule_id=detection.rule_id,
                  severity=detection.severity, dedupe_key=digest, group=_jsonable(detection.group),
                  event_count=detection.event_count, event_ids=list(detection.event_ids)[-MAX_EVENT_IDS:],
                  first_seen=detection.first_ts, last_seen=detection.last_ts)
    session.add(alert)
    return alert, True


def _jsonable(group: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(group, default=str))


def list_(
    session: Session,
    *,
    scope: Scope,
    status: str | None = None,
    severity: str | None = None,
    rule_id: str | None = None,
    host_id: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[Alert]:
    """Newest first, within the caller's scope; ``before_id`` pages backwards (keyset)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    if severity is not None and severity not in SEVERITIES:
        raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}")
    query = select(Alert).where(scope.where(Alert.unit_id))
    if status is not None:
        query = query.where(Alert.status == status)
    if severity is not None:
        query = query.where(Alert.severity == severity)
    if rule_id is not None:
        query = query.where(Alert.rule_id == rule_id)
    if host_id is not None:
        query = query.where(Alert.host_id == host_id)
    if before_id is not None:
        query = query.where(Alert.id < before_id)
    return list(session.exec(query.order_by(Alert.id.desc()).limit(min(limit, MAX_PAGE))))


def get(session: Session, *, scope: Scope, alert_id: int) -> Alert:
    """One alert in scope, or NotFound (never Forbidden: other units' ids are not confirmed)."""
    alert = session.exec(select(Alert).where(Alert.id == alert_id, scope.where(Alert.unit_id))).first()
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    return alert


def counts(session: Session) -> dict[tuple[str, str], int]:
    """Alerts by (severity, status), for /metrics."""
    rows = session.exec(select(Alert.severity, Alert.status, func.count()).group_by(Alert.severity, Alert.status))
    return {(severity, status): n for severity, status, n in rows}


def get_cursor(session: Session, *, name: str) -> int:
    row = session.get(PipelineCursor, name)
    return row.position if row is not None else 0


def set_cursor(session: Session, *, name: str, position: int) -> None:
    row = session.get(PipelineCursor, name) or PipelineCursor(name=name)
    row.position = position
    row.updated_at = utcnow()
    session.add(row)
