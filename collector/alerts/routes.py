"""People-facing alert API (unit-scoped): the queue, one alert, and the triage workflow.

Reads take the caller's scope; every change goes through ``collector.alerts.triage`` /
``suppressions`` with the caller as actor, which check the permission and write the audit log.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query

from collector.alerts import queue, suppressions, triage
from collector.alerts import service as alerts
from collector.alerts.models import (
    AlertCommentPublic,
    AlertPublic,
    AlertSuppressionPublic,
    Assignment,
    BulkChange,
    CommentCreate,
    StatusChange,
    SuppressionIn,
)
from collector.deps import CallerScope, CurrentActor, DbDep, SessionDep

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


def _public(alert) -> AlertPublic:
    return AlertPublic.model_validate(alert, from_attributes=True)


def _filters(unit, host_id, rule, severity, status, since, until, q, assignee) -> queue.AlertFilter:
    return queue.AlertFilter(unit=unit or None, host_id=host_id, rule_id=rule or None, severity=severity or None,
                             status=status or None, since=since, until=until, q=q or None,
                             assignee=assignee or None)


@router.get("")
def list_alerts(session: SessionDep, scope: CallerScope, status: str | None = None, severity: str | None = None,
                rule: str | None = None, host_id: int | None = None, before_id: int | None = None,
                unit: str | None = None, since: datetime | None = None, until: datetime | None = None,
                q: str | None = None, assignee: str | None = None, sort: str = "newest", cursor: str | None = None,
                limit: int = Query(100, ge=1, le=500)) -> dict:
    """The queue. ``before_id`` (newest-first paging) is kept for old clients; ``cursor`` works for every sort."""
    filters = _filters(unit, host_id, rule, severity, status, since, until, q, assignee)
    if before_id is not None and cursor is None and sort == "newest":
        cursor = str(before_id)
    result = queue.page(session, scope=scope, filters=filters, sort=sort, cursor=cursor, limit=limit)
    items = [_public(a) for a in result.items]
    return {"items": items, "next_cursor": result.next_cursor,
            "next_before_id": items[-1].id if result.next_cursor and sort == "newest" else None}


@router.get("/counts")
def alert_counts(session: SessionDep, scope: CallerScope, status: str | None = None, severity: str | None = None,
                 rule: str | None = None, host_id: int | None = None, unit: str | None = None,
                 since: datetime | None = None, until: datetime | None = None, q: str | None = None,
                 assignee: str | None = None) -> dict[str, int]:
    """Alerts per severity for the filter, and how many detections suppressions held back."""
    filters = _filters(unit, host_id, rule, severity, status, since, until, q, assignee)
    return queue.severity_counts(session, scope=scope, filters=filters)


@router.get("/suppressions")
def list_suppressions(session: SessionDep, scope: CallerScope, active: bool = True, rule: str | None = None,
                      host_id: int | None = None) -> list[AlertSuppressionPublic]:
    rows = suppressions.list_(session, scope=scope, active_only=active, rule_id=rule, host_id=host_id)
    return [AlertSuppressionPublic.model_validate(r, from_attributes=True) for r in rows]


@router.post("/suppressions", status_code=201)
def create_suppression(body: SuppressionIn, db: DbDep, actor: CurrentActor) -> AlertSuppressionPublic:
    with db.transaction(actor=actor) as session:
        row = suppressions.create(session, actor=actor, data=suppressions.SuppressionCreate(**body.model_dump()))
        return AlertSuppressionPublic.model_validate(row, from_attributes=True)


@router.post("/suppressions/{suppression_id}/expire")
def expire_suppression(suppression_id: int, db: DbDep, actor: CurrentActor) -> AlertSuppressionPublic:
    with db.transaction(actor=actor) as session:
        row = suppressions.expire(session, actor=actor, suppression_id=suppression_id)
        return AlertSuppressionPublic.model_validate(row, from_attributes=True)


@router.post("/bulk")
def bulk_change(body: BulkChange, db: DbDep, actor: CurrentActor) -> dict:
    with db.transaction(actor=actor) as session:
        changed = triage.bulk(session, actor=actor, alert_ids=body.alert_ids, status=body.status,
                              assignee=body.assignee, unassign=body.unassign, comment=body.comment)
        return {"changed": len(changed), "items": [_public(a) for a in changed]}


@router.get("/{alert_id}")
def get_alert(alert_id: int, session: SessionDep, scope: CallerScope) -> AlertPublic:
    return _public(alerts.get(session, scope=scope, alert_id=alert_id))


@router.get("/{alert_id}/comments")
def list_comments(alert_id: int, session: SessionDep, scope: CallerScope) -> list[AlertCommentPublic]:
    rows = triage.list_comments(session, scope=scope, alert_id=alert_id)
    return [AlertCommentPublic.model_validate(r, from_attributes=True) for r in rows]


@router.post("/{alert_id}/status")
def change_status(alert_id: int, body: StatusChange, db: DbDep, actor: CurrentActor) -> AlertPublic:
    with db.transaction(actor=actor) as session:
        return _public(triage.set_status(session, actor=actor, alert_id=alert_id, status=body.status,
                                         comment=body.comment))


@router.post("/{alert_id}/assign")
def assign(alert_id: int, body: Assignment, db: DbDep, actor: CurrentActor) -> AlertPublic:
    with db.transaction(actor=actor) as session:
        return _public(triage.assign(session, actor=actor, alert_id=alert_id, assignee=body.assignee))


@router.post("/{alert_id}/comments", status_code=201)
def add_comment(alert_id: int, body: CommentCreate, db: DbDep, actor: CurrentActor) -> AlertCommentPublic:
    with db.transaction(actor=actor) as session:
        row = triage.add_comment(session, actor=actor, alert_id=alert_id, body=body.body)
        return AlertCommentPublic.model_validate(row, from_attributes=True)
