"""People-facing alert API: ``GET /api/v1/alerts`` and ``GET /api/v1/alerts/{id}`` (unit-scoped)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from collector.alerts import service as alerts
from collector.alerts.models import AlertPublic
from collector.deps import CallerScope, SessionDep

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


@router.get("")
def list_alerts(session: SessionDep, scope: CallerScope, status: str | None = None, severity: str | None = None,
                rule: str | None = None, host_id: int | None = None, before_id: int | None = None,
                limit: int = Query(100, ge=1, le=500)) -> dict:
    rows = alerts.list_(session, scope=scope, status=status, severity=severity, rule_id=rule, host_id=host_id,
                        before_id=before_id, limit=limit)
    items = [AlertPublic.model_validate(a, from_attributes=True) for a in rows]
    return {"items": items, "next_before_id": items[-1].id if len(items) == limit else None}


@router.get("/{alert_id}")
def get_alert(alert_id: int, session: SessionDep, scope: CallerScope) -> AlertPublic:
    return AlertPublic.model_validate(alerts.get(session, scope=scope, alert_id=alert_id), from_attributes=True)
