"""``GET /api/v1/audit`` (newest first, keyset-paged) and ``GET /api/v1/audit/export`` (CSV): admins, auditors."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from fastapi.responses import Response

from collector.audit import service as audit
from collector.audit.models import AuditEntryPublic
from collector.deps import CurrentActor, SessionDep

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
def list_entries(session: SessionDep, actor: CurrentActor, who: str | None = None, action: str | None = None,
                 target_type: str | None = None, target_id: str | None = None, unit_id: int | None = None,
                 since: datetime | None = None, until: datetime | None = None, before_id: int | None = None,
                 limit: int = Query(100, ge=1, le=audit.MAX_PAGE)) -> dict:
    rows = audit.list_(session, actor=actor, who=who, action=action, target_type=target_type, target_id=target_id,
                       unit_id=unit_id, since=since, until=until, before_id=before_id, limit=limit)
    items = [AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows]
    return {"items": items, "next_before_id": items[-1].id if len(items) == limit else None}


@router.get("/export", response_class=Response, responses={200: {
    "description": "The entries as CSV (UTF-8 with a byte-order mark, for spreadsheets)",
    "content": {"text/csv": {"schema": {"type": "string"}}}}})
def export(session: SessionDep, actor: CurrentActor, who: str | None = None, action: str | None = None,
           target_type: str | None = None, unit_id: int | None = None, since: datetime | None = None,
           until: datetime | None = None) -> Response:
    rows = audit.list_(session, actor=actor, who=who, action=action, target_type=target_type, unit_id=unit_id,
                       since=since, until=until, limit=audit.EXPORT_LIMIT)
    audit.log(session, actor=actor, action="export", target_type="audit_log",
              after={"rows": len(rows), "filters": {k: v for k, v in {
                  "who": who, "action": action, "target_type": target_type, "unit_id": unit_id,
                  "since": since and since.isoformat(), "until": until and until.isoformat()}.items() if v}})
    session.commit()
    return Response(audit.to_csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="khien-audit.csv"'})
