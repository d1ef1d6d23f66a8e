"""People-facing incidents API: record an incident, record its reports, list them — scoped by unit."""

from __future__ import annotations

from fastapi import APIRouter

from collector.deps import CallerScope, CurrentActor, CurrentUser, DbDep, SessionDep
from collector.incidents import service as incidents
from collector.incidents.models import IncidentCreate, IncidentReported
from collector.types import utcnow
from collector.units import service as units

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


@router.get("")
def list_incidents(session: SessionDep, scope: CallerScope, unit: str | None = None) -> dict:
    unit_id = units.get_by_code(session, code=unit).id if unit else None
    return {"items": [r.model_dump() for r in incidents.list_(session, scope=scope, unit_id=unit_id)]}


@router.post("", status_code=201)
def record_incident(data: IncidentCreate, db: DbDep, user: CurrentUser,
                    actor: CurrentActor, scope: CallerScope) -> dict:
    with db.transaction(actor=actor) as session:
        return incidents.record(session, scope=scope, data=data, by=user.username, by_role=user.role,
                                now=utcnow()).model_dump()


@router.post("/{incident_id}/reported")
def record_report(incident_id: int, data: IncidentReported, db: DbDep, user: CurrentUser, actor: CurrentActor,
                  scope: CallerScope) -> dict:
    with db.transaction(actor=actor) as session:
        return incidents.reported(session, scope=scope, incident_id=incident_id, stage=data.stage, at=data.at,
                                  by_role=user.role, now=utcnow()).model_dump()
