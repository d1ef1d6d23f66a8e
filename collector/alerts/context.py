"""What an analyst needs next to one alert: the events that triggered it, the host and its other alerts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, select

from collector.alerts.models import Alert
from collector.events.models import Event
from collector.findings.models import Finding
from collector.hosts.models import Host
from collector.scope import Scope
from collector.units.models import Unit

OPEN_FINDINGS = ("open", "reopened")
RELATED_LIMIT = 20


@dataclass(frozen=True, slots=True)
class HostContext:
    host: Host
    unit_code: str
    unit_name: str
    open_findings: int


def triggering_events(session: Session, *, scope: Scope, alert: Alert) -> list[Event]:
    """The stored events behind the alert (the last ``MAX_EVENT_IDS`` of them), oldest first."""
    ids = [i for i in alert.event_ids if isinstance(i, int) and not isinstance(i, bool)]
    if not ids:
        return []
    return list(session.exec(select(Event).where(Event.id.in_(ids), scope.where(Event.unit_id))
                             .order_by(Event.ts, Event.id)))


def related_alerts(session: Session, *, scope: Scope, alert: Alert, limit: int = RELATED_LIMIT) -> list[Alert]:
    """Other alerts of the same host, newest first."""
    if alert.host_id is None:
        return []
    return list(session.exec(select(Alert).where(Alert.host_id == alert.host_id, Alert.id != alert.id,
                                                 scope.where(Alert.unit_id))
                             .order_by(Alert.id.desc()).limit(limit)))


def host_context(session: Session, *, scope: Scope, alert: Alert) -> HostContext | None:
    """The alert's host with its unit, level, exposure and open findings count (None without a host)."""
    if alert.host_id is None:
        return None
    row = session.exec(select(Host, Unit.code, Unit.name).join(Unit, Unit.id == Host.unit_id)
                       .where(Host.id == alert.host_id, scope.where(Host.unit_id))).first()
    if row is None:
        return None
    host, code, name = row
    open_findings = session.exec(select(func.count()).select_from(Finding).where(
        Finding.host_id == host.id, Finding.status.in_(OPEN_FINDINGS))).one()
    return HostContext(host=host, unit_code=code, unit_name=name, open_findings=int(open_findings))
