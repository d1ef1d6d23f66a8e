"""Recording incidents and their reports; whether each was reported on time (the model's A8 hours)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from collector.access import Action, roles_with
from collector.errors import Forbidden, InvalidInput, NotFound
from collector.incidents.models import SEVERITIES, Incident, IncidentCreate
from collector.scope import Scope
from collector.units import service as units

RECORDERS = roles_with(Action.record_incidents)


def _check_times(detected: datetime, initial: datetime | None, full: datetime | None, now: datetime) -> None:
    if detected > now:
        raise InvalidInput("detected_at is in the future")
    for name, at in (("initial_report_at", initial), ("full_report_at", full)):
        if at is not None and (at < detected or at > now):
            raise InvalidInput(f"{name} must lie between detection and now")
    if initial is not None and full is not None and full < initial:
        raise InvalidInput("the full report cannot come before the initial notice")


def record(session: Session, *, scope: Scope, data: IncidentCreate, by: str, by_role: str,
           now: datetime) -> Incident:
    if by_role not in RECORDERS:
        raise Forbidden("recording an incident needs the role admin, analyst or unit_officer")
    unit = units.get_visible(session, scope=scope, code=data.unit)
    if data.severity not in SEVERITIES:
        raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}")
    _check_times(data.detected_at, data.initial_report_at, data.full_report_at, now)
    row = Incident(unit_id=unit.id, title=data.title, severity=data.severity, detected_at=data.detected_at,
                   initial_report_at=data.initial_report_at, full_report_at=data.full_report_at,
                   caused_by_overdue=data.caused_by_overdue, summary=data.summary, recorded_by=by, created_at=now)
    session.add(row)
    session.flush()
    return row


def reported(session: Session, *, scope: Scope, incident_id: int, stage: str, at: datetime, by_role: str,
             now: datetime) -> Incident:
    if by_role not in RECORDERS:
        raise Forbidden("recording a report needs the role admin, analyst or unit_officer")
    row = get(session, scope=scope, incident_id=incident_id)
    if stage not in ("initial", "full"):
        raise InvalidInput("stage must be initial or full")
    initial = at if stage == "initial" else row.initial_report_at
    full = at if stage == "full" else row.full_report_at
    _check_times(row.detected_at, initial, full, now)
    row.initial_report_at, row.full_report_at = initial, full
    session.add(row)
    return row


def get(session: Session, *, scope: Scope, incident_id: int) -> Incident:
    row = session.get(Incident, incident_id)
    if row is None or not scope.allows(row.unit_id):
        raise NotFound(f"no incident {incident_id}")
    return row


def list_(session: Session, *, scope: Scope, unit_id: int | None = None, since: datetime | None = None,
          until: datetime | None = None) -> list[Incident]:
    query = select(Incident).where(scope.where(Incident.unit_id))
    if unit_id is not None:
        query = query.where(Incident.unit_id == unit_id)
    if since is not None:
        query = query.where(Incident.detected_at >= since)
    if until is not None:
        query = query.where(Incident.detected_at < until)
    return list(session.exec(query.order_by(Incident.detected_at)))


def on_time(incident: Incident, *, at: datetime, initial_hours: float, full_hours: float) -> bool | None:
    """Whether a serious incident was reported on time as of ``at`` (None: not serious, nothing due).

    A report still missing counts as late once its deadline has passed, and as not yet due before.
    """
    if incident.severity != "serious":
        return None
    for done, hours in ((incident.initial_report_at, initial_hours), (incident.full_report_at, full_hours)):
        due = incident.detected_at + timedelta(hours=hours)
        if (done is None and at > due) or (done is not None and done > due):
            return False
    return True
