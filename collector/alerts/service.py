"""Alerts: fold detections into alerts (dedupe window, active suppressions), unit-scoped reads, counts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from collector.alerts import suppressions
from collector.alerts.models import (
    MAX_EVENT_IDS,
    OPEN_STATUSES,
    SEVERITIES,
    STATUSES,
    SUPPRESSED,
    Alert,
    AlertSuppression,
    PipelineCursor,
)
from collector.errors import InvalidInput, NotFound
from collector.scope import Scope
from collector.types import utcnow

MAX_PAGE = 500


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


def record(session: Session, *, detection: NewDetection, now: datetime | None = None) -> tuple[Alert, bool]:
    """Fold into the open alert with the same key when within its suppress window, else open a new one.

    An active suppression for the rule on the host or unit keeps the detection out of the queue
    (a `suppressed` alert, or folded into the open one for a dedup) but never drops it: it is stored
    and counted. Returns the alert and whether it is new.
    """
    return record_many(session, detections=[detection], now=now)[0]


def record_many(session: Session, *, detections: list[NewDetection],
                now: datetime | None = None) -> list[tuple[Alert, bool]]:
    """``record`` each detection in order, as if one by one, with the lookups made once for all.

    Detection records hundreds of detections a step (repeats of a few keys, mostly). One by one each
    cost two queries and a flush of the alert it folded into; here active suppressions and the newest
    open alert of every key are read in two queries, and repeats fold into the same object in memory.
    """
    if not detections:
        return []
    now = now or utcnow()
    digests = [dedupe_key(d.key) for d in detections]
    # The lookups see what this session has pending (autoflush); the loop below then queries nothing
    # but the rare suppressed path, which flushes first.
    active = _active_suppressions(session, detections=detections, at=now)
    newest_open = _newest_open(session, keys={(digest, d.unit_id) for digest, d in zip(digests, detections,
                                                                                        strict=True)})
    recorded = []
    with session.no_autoflush:
        for digest, detection in zip(digests, detections, strict=True):
            suppression = _matching(active, detection)
            if suppression is not None:
                session.flush()  # the rare path queries as record() always did: let it see this batch
                alert, new = _record_suppressed(session, detection=detection, digest=digest,
                                                suppression=suppression, now=now)
            else:
                latest = newest_open.get((digest, detection.unit_id))
                window = timedelta(seconds=detection.suppress_s)
                if latest is not None and detection.suppress_s > 0 and detection.first_ts <= latest.last_seen + window:
                    alert, new = _fold(session, latest, detection, now=now), False
                else:
                    alert, new = _open(session, detection, digest=digest, now=now), True
                    newest_open[(digest, detection.unit_id)] = alert  # the newest open one from now on
            recorded.append((alert, new))
    return recorded


def _active_suppressions(session: Session, *, detections: list[NewDetection],
                         at: datetime) -> dict[tuple[str, int], list[AlertSuppression]]:
    rows = session.exec(select(AlertSuppression).where(
        AlertSuppression.rule_id.in_({d.rule_id for d in detections}),
        AlertSuppression.unit_id.in_({d.unit_id for d in detections}),
        AlertSuppression.expired_at.is_(None), AlertSuppression.expires_at > at)).all()
    by_rule_unit: dict[tuple[str, int], list[AlertSuppression]] = {}
    for row in rows:
        by_rule_unit.setdefault((row.rule_id, row.unit_id), []).append(row)
    return by_rule_unit


def _matching(active: dict[tuple[str, int], list[AlertSuppression]],
              detection: NewDetection) -> AlertSuppression | None:
    return suppressions.pick(active.get((detection.rule_id, detection.unit_id), []), host_id=detection.host_id)


def _newest_open(session: Session, *, keys: set[tuple[str, int]]) -> dict[tuple[str, int], Alert]:
    """The newest open alert of each (dedupe key, unit) that has one."""
    newest_ids = (select(func.max(Alert.id))
                  .where(Alert.dedupe_key.in_({digest for digest, _ in keys}), Alert.status.in_(OPEN_STATUSES))
                  .group_by(Alert.dedupe_key, Alert.unit_id))
    rows = session.exec(select(Alert).where(Alert.id.in_(newest_ids))).all()
    return {(a.dedupe_key, a.unit_id): a for a in rows if (a.dedupe_key, a.unit_id) in keys}


def _record_suppressed(session: Session, *, detection: NewDetection, digest: str, suppression: AlertSuppression,
                       now: datetime) -> tuple[Alert, bool]:
    suppression.hits += 1
    suppression.last_hit_at = now
    session.add(suppression)
    if suppression.kind == "dedup":
        # Dedup: "we know, stop opening new ones" — repeats join the open alert whatever the window.
        latest = _newest(session, digest=digest, unit_id=detection.unit_id, statuses=OPEN_STATUSES)
        if latest is not None:
            return _fold(session, latest, detection, now=now), False
    held = session.exec(select(Alert).where(Alert.dedupe_key == digest, Alert.unit_id == detection.unit_id,
                                            Alert.status == SUPPRESSED, Alert.suppression_id == suppression.id)
                        .order_by(Alert.id.desc()).limit(1)).first()
    if held is not None:
        return _fold(session, held, detection, now=now), False
    alert = _open(session, detection, digest=digest, now=now)
    alert.status, alert.suppression_id = SUPPRESSED, suppression.id
    return alert, True


def _newest(session: Session, *, digest: str, unit_id: int, statuses: tuple[str, ...]) -> Alert | None:
    return session.exec(select(Alert).where(Alert.dedupe_key == digest, Alert.unit_id == unit_id,
                                            Alert.status.in_(statuses))
                        .order_by(Alert.id.desc()).limit(1)).first()


def _fold(session: Session, alert: Alert, detection: NewDetection, *, now: datetime) -> Alert:
    alert.count += 1
    alert.event_count += detection.event_count
    alert.last_seen = max(alert.last_seen, detection.last_ts)
    alert.event_ids = [*alert.event_ids, *detection.event_ids][-MAX_EVENT_IDS:]
    alert.updated_at = now
    session.add(alert)
    return alert


def _open(session: Session, detection: NewDetection, *, digest: str, now: datetime) -> Alert:
    alert = Alert(unit_id=detection.unit_id, host_id=detection.host_id, rule_id=detection.rule_id,
                  severity=detection.severity, dedupe_key=digest, group=_jsonable(detection.group),
                  event_count=detection.event_count, event_ids=list(detection.event_ids)[-MAX_EVENT_IDS:],
                  first_seen=detection.first_ts, last_seen=detection.last_ts, created_at=now, updated_at=now)
    session.add(alert)
    return alert


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
