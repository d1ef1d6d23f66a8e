"""Suppressions: stop a rule's detections on a host or unit from reaching the queue, for a while.

Every suppression expires (at most ``MAX_DAYS`` ahead) and carries a reason and its author, and the
detections it holds back are still stored and counted (``service.record``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from collector.access import Action, Actor
from collector.alerts.models import MAX_REASON_CHARS, SUPPRESSION_KINDS, AlertSuppression
from collector.errors import Conflict, InvalidInput, NotFound
from collector.hosts import service as hosts
from collector.scope import Scope
from collector.types import utcnow
from collector.units import service as units

MAX_DAYS = 90  # a suppression nobody renews must not hide a rule forever
RULE_ID = re.compile(r"^[a-z0-9_.\-]{1,128}$")


@dataclass(frozen=True, slots=True)
class SuppressionCreate:
    rule_id: str
    kind: str
    reason: str
    expires_at: datetime
    host_id: int | None = None
    unit: str | None = None  # unit code, when the scope is a whole unit


def pick(active: Sequence[AlertSuppression], *, host_id: int | None) -> AlertSuppression | None:
    """Of the active suppressions for a rule in a unit, the one that applies on ``host_id``: the newest
    for the host itself, else the newest for the whole unit."""
    on_host = [s for s in active if s.host_id is not None and s.host_id == host_id]
    on_unit = [s for s in active if s.host_id is None]
    found = on_host or on_unit
    return max(found, key=lambda s: s.id) if found else None


def create(session: Session, *, actor: Actor, data: SuppressionCreate, now: datetime | None = None) -> AlertSuppression:
    """A new suppression for a rule on one host or one unit of the actor's scope."""
    now = now or utcnow()
    rule_id = data.rule_id.strip()
    reason = data.reason.strip()
    if not RULE_ID.match(rule_id):
        raise InvalidInput("rule id must be 1–128 characters of a-z, 0-9, _ . -")
    if data.kind not in SUPPRESSION_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(SUPPRESSION_KINDS)}")
    if not reason:
        raise InvalidInput("a reason is required")
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidInput(f"the reason is longer than {MAX_REASON_CHARS} characters")
    expires_at = data.expires_at if data.expires_at.tzinfo else None
    if expires_at is None:
        raise InvalidInput("expires_at needs a time zone")
    if expires_at <= now:
        raise InvalidInput("expires_at must be in the future")
    if expires_at > now + timedelta(days=MAX_DAYS):
        raise InvalidInput(f"a suppression lasts at most {MAX_DAYS} days")
    if (data.host_id is None) == (not data.unit):
        raise InvalidInput("give either a host or a unit")
    if data.host_id is not None:
        host, _code = hosts.get(session, scope=actor.scope, host_id=data.host_id)
        unit_id, host_id = host.unit_id, host.id
    else:
        unit_id, host_id = units.get_visible(session, scope=actor.scope, code=data.unit or "").id, None
    actor.require(Action.suppress_alerts, unit_id=unit_id)
    row = AlertSuppression(rule_id=rule_id, unit_id=unit_id, host_id=host_id, kind=data.kind, reason=reason,
                           created_by=actor.username, created_at=now, expires_at=expires_at)
    session.add(row)
    session.flush()
    return row


def list_(session: Session, *, scope: Scope, active_only: bool = True, rule_id: str | None = None,
          host_id: int | None = None, now: datetime | None = None, limit: int = 200) -> list[AlertSuppression]:
    """Suppressions in scope, newest first."""
    now = now or utcnow()
    query = select(AlertSuppression).where(scope.where(AlertSuppression.unit_id))
    if active_only:
        query = query.where(AlertSuppression.expired_at.is_(None), AlertSuppression.expires_at > now)
    if rule_id is not None:
        query = query.where(AlertSuppression.rule_id == rule_id)
    if host_id is not None:
        query = query.where(AlertSuppression.host_id == host_id)
    return list(session.exec(query.order_by(AlertSuppression.id.desc()).limit(min(limit, 500))))


def get(session: Session, *, scope: Scope, suppression_id: int) -> AlertSuppression:
    row = session.exec(select(AlertSuppression).where(AlertSuppression.id == suppression_id,
                                                      scope.where(AlertSuppression.unit_id))).first()
    if row is None:
        raise NotFound(f"suppression {suppression_id} not found")
    return row


def expire(session: Session, *, actor: Actor, suppression_id: int, now: datetime | None = None) -> AlertSuppression:
    """End a suppression now; detections from then on reach the queue again."""
    now = now or utcnow()
    row = get(session, scope=actor.scope, suppression_id=suppression_id)
    actor.require(Action.suppress_alerts, unit_id=row.unit_id)
    if not row.active(now):
        raise Conflict(f"suppression {suppression_id} has already ended")
    row.expired_at, row.expired_by = now, actor.username
    session.add(row)
    session.flush()
    return row
