"""Exceptions: create (approved, at most ``max_days``), renew once, revoke, list in scope, and look up
the exception that covers a result now.

A unit-scoped exception covers the unit and every unit below it; ``all`` covers every host.
Expiry is computed when read, so an expired exception stops covering results at that instant.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlmodel import Session, select

from collector.errors import Conflict, Forbidden, InvalidInput, NotFound
from collector.exceptions.models import SCOPES, TARGET_KINDS, RiskException, RiskExceptionCreate
from collector.hosts.models import Host
from collector.scope import Scope
from collector.units import service as units
from collector.units.models import Unit

MAX_DAYS = 90
MAX_RENEWALS = 1
APPROVER_ROLES = frozenset({"admin"})


def create(session: Session, *, data: RiskExceptionCreate, approver: str, approver_role: str, now: datetime,
           known_checks: frozenset[str] | None = None, max_days: int = MAX_DAYS) -> RiskException:
    """Record an approved exception; everything about it is validated before anything is written."""
    _require_approver(approver_role)
    if data.target_kind not in TARGET_KINDS:
        raise InvalidInput(f"target_kind must be one of {', '.join(TARGET_KINDS)}")
    if data.scope not in SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}")
    if data.target_kind == "check" and known_checks is not None and data.target not in known_checks:
        raise InvalidInput(f"unknown check id: {data.target!r}")
    if data.expires_in_days > max_days:
        raise InvalidInput(f"an exception lasts at most {max_days} days (asked {data.expires_in_days})")
    unit_id, host_id = _scope_target(session, data)
    row = RiskException(target_kind=data.target_kind, target=data.target, scope=data.scope, unit_id=unit_id,
                        host_id=host_id, justification=data.justification.strip(),
                        compensating_control=data.compensating_control.strip(), requested_by=data.requested_by,
                        approved_by=approver, created_at=now, expires_at=now + timedelta(days=data.expires_in_days))
    session.add(row)
    session.flush()
    return row


def _scope_target(session: Session, data: RiskExceptionCreate) -> tuple[int | None, int | None]:
    if data.scope == "host":
        if data.host_id is None or data.unit:
            raise InvalidInput("scope host needs host_id (and no unit)")
        host = session.get(Host, data.host_id)
        if host is None:
            raise NotFound(f"host {data.host_id} not found")
        return host.unit_id, host.id
    if data.scope == "unit":
        if not data.unit or data.host_id is not None:
            raise InvalidInput("scope unit needs a unit code (and no host_id)")
        return units.get_by_code(session, code=data.unit).id, None
    if data.unit or data.host_id is not None:
        raise InvalidInput("scope all takes neither unit nor host_id")
    return None, None


def renew(session: Session, *, exception_id: int, approver: str, approver_role: str, days: int, now: datetime,
          max_days: int = MAX_DAYS) -> RiskException:
    """Extend once, by at most ``max_days`` from now; a revoked exception cannot come back."""
    _require_approver(approver_role)
    row = _get(session, exception_id)
    if row.revoked_at is not None:
        raise Conflict(f"exception {exception_id} was revoked")
    if row.renewals >= MAX_RENEWALS:
        raise Conflict(f"exception {exception_id} was already renewed {row.renewals} time(s); at most {MAX_RENEWALS}")
    if not 1 <= days <= max_days:
        raise InvalidInput(f"a renewal lasts 1 to {max_days} days")
    row.expires_at = now + timedelta(days=days)
    row.renewals += 1
    row.approved_by = approver
    session.add(row)
    return row


def revoke(session: Session, *, exception_id: int, by: str, by_role: str, reason: str, now: datetime) -> RiskException:
    _require_approver(by_role)
    if not reason.strip():
        raise InvalidInput("a revocation needs a reason")
    row = _get(session, exception_id)
    if row.revoked_at is not None:
        raise Conflict(f"exception {exception_id} is already revoked")
    row.revoked_at, row.revoked_by, row.revoke_reason = now, by, reason.strip()
    session.add(row)
    return row


def _require_approver(role: str) -> None:
    if role not in APPROVER_ROLES:
        raise Forbidden("only administrators approve, renew or revoke exceptions")


def _get(session: Session, exception_id: int) -> RiskException:
    row = session.get(RiskException, exception_id)
    if row is None:
        raise NotFound(f"exception {exception_id} not found")
    return row


def get(session: Session, *, scope: Scope, exception_id: int) -> RiskException:
    row = session.exec(select(RiskException).where(RiskException.id == exception_id, _visible(scope))).first()
    if row is None:
        raise NotFound(f"exception {exception_id} not found")
    return row


def list_(session: Session, *, scope: Scope, status: str | None = None, now: datetime,
          target_kind: str | None = None) -> list[RiskException]:
    """Exceptions the caller may see (their units', and the ``all`` ones), newest first."""
    query = select(RiskException).where(_visible(scope)).order_by(RiskException.id.desc()).limit(1000)
    if target_kind is not None:
        query = query.where(RiskException.target_kind == target_kind)
    rows = list(session.exec(query))
    return [r for r in rows if status is None or r.status_at(now) == status]


def _visible(scope: Scope):
    return or_(RiskException.scope == "all", scope.where(RiskException.unit_id))


class Coverage:
    """Active exceptions of one kind at one instant, indexed for many lookups (e.g. a host's checks)."""

    def __init__(self, session: Session, *, target_kind: str, at: datetime) -> None:
        rows = session.exec(select(RiskException).where(
            RiskException.target_kind == target_kind, RiskException.expires_at > at,
            or_(RiskException.revoked_at.is_(None), RiskException.revoked_at > at))).all()
        self.rows = sorted(rows, key=lambda r: r.id)
        self._ancestors = _ancestors(session) if any(r.scope == "unit" for r in self.rows) else {}

    def covering(self, *, target: str, host_id: int, unit_id: int) -> RiskException | None:
        """The first (oldest) active exception that covers ``target`` on this host, or None."""
        chain = self._ancestors.get(unit_id, {unit_id})
        for row in self.rows:
            if row.target != target:
                continue
            if (row.scope == "all" or (row.scope == "host" and row.host_id == host_id)
                    or (row.scope == "unit" and row.unit_id in chain)):
                return row
        return None


def _ancestors(session: Session) -> dict[int, set[int]]:
    """Each unit with every unit above it (a unit exception covers its sub-units)."""
    parents = dict(session.exec(select(Unit.id, Unit.parent_id)).all())
    out: dict[int, set[int]] = {}
    for unit_id in parents:
        chain, current = set(), unit_id
        while current is not None and current not in chain:
            chain.add(current)
            current = parents.get(current)
        out[unit_id] = chain
    return out
