"""Exceptions: create (approved, at most ``max_days``), renew once, revoke, list in scope, and look up
the exception that covers a result now. Units and analysts *request* one; an administrator approves
or rejects the request (``request``/``approve``/``reject``); only an approved one ever covers anything.

A unit-scoped exception covers the unit and every unit below it; ``all`` covers every host.
Expiry is computed when read, so an expired exception stops covering results at that instant.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlmodel import Session, select

from collector.access import Action, Actor
from collector.errors import Conflict, Forbidden, InvalidInput, NotFound
from collector.exceptions.models import (
    MAX_TEXT,
    SCOPES,
    TARGET_KINDS,
    ExceptionRequestCreate,
    RiskException,
    RiskExceptionCreate,
)
from collector.findings.models import Finding
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
    _require_approved(row)
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
    _require_approved(row)
    if row.revoked_at is not None:
        raise Conflict(f"exception {exception_id} is already revoked")
    row.revoked_at, row.revoked_by, row.revoke_reason = now, by, reason.strip()
    session.add(row)
    return row


def _require_approved(row: RiskException) -> None:
    if row.status != "approved":
        raise Conflict(f"exception {row.id} is {row.status}, not an approved exception")


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
            RiskException.target_kind == target_kind, RiskException.status == "approved",
            RiskException.expires_at > at,
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


# ---- requests: asked by units and analysts, decided by administrators ------------------------------

def request(session: Session, *, actor: Actor, data: ExceptionRequestCreate, now: datetime,
            known_checks: frozenset[str] | None = None) -> RiskException:
    """Record a request (not in force) after checking the target is the requester's to ask about."""
    actor.require(Action.request_exception)
    kind, target, scope, unit_id, host_id = _request_target(session, actor=actor, data=data, known_checks=known_checks)
    actor.require(Action.request_exception, unit_id=unit_id)
    pending = session.exec(select(RiskException.id).where(
        RiskException.status == "requested", RiskException.target_kind == kind, RiskException.target == target,
        RiskException.scope == scope, _same(RiskException.unit_id, unit_id), _same(RiskException.host_id, host_id),
    )).first()
    if pending is not None:
        raise Conflict(f"exception request {pending} for the same target is already awaiting a decision")
    row = RiskException(target_kind=kind, target=target, scope=scope, unit_id=unit_id, host_id=host_id,
                        justification=data.justification.strip(),
                        compensating_control=data.compensating_control.strip(), requested_by=actor.username,
                        approved_by="", status="requested", finding_id=data.finding_id, requested_at=now,
                        requested_days=data.expires_in_days, created_at=now, expires_at=now)
    session.add(row)
    session.flush()
    return row


def _same(column, value):
    return column.is_(None) if value is None else column == value


def _request_target(session: Session, *, actor: Actor, data: ExceptionRequestCreate,
                    known_checks: frozenset[str] | None) -> tuple[str, str, str, int | None, int | None]:
    """(target kind, target, scope, unit id, host id) of a request; outside the actor's units: NotFound."""
    if not data.justification.strip() or not data.compensating_control.strip():
        raise InvalidInput("a request needs a justification and a compensating control")
    if data.finding_id is not None:
        if data.target_kind or data.target or data.scope or data.unit or data.host_id is not None:
            raise InvalidInput("a request for a finding takes finding_id only (its rule and host are used)")
        finding = session.exec(select(Finding).where(Finding.id == data.finding_id,
                                                     actor.scope.where(Finding.unit_id))).first()
        if finding is None:
            raise NotFound(f"no finding {data.finding_id}")
        if finding.status == "fixed":
            raise Conflict(f"finding {finding.id} is fixed: there is no risk left to accept")
        kind = "check" if finding.kind == "check" else "finding"
        if finding.host_id is not None:
            return kind, finding.rule, "host", finding.unit_id, finding.host_id
        return kind, finding.rule, "unit", finding.unit_id, None
    if data.target_kind not in TARGET_KINDS:
        raise InvalidInput(f"target_kind must be one of {', '.join(TARGET_KINDS)}")
    if data.scope not in SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}")
    if not data.target:
        raise InvalidInput("target is required")
    if data.target_kind == "check" and known_checks is not None and data.target not in known_checks:
        raise InvalidInput(f"unknown check id: {data.target!r}")
    if data.scope == "all" and not actor.scope.all_units:
        raise Forbidden("an exception for every unit is outside your scope")
    as_create = RiskExceptionCreate(target_kind=data.target_kind, target=data.target, scope=data.scope,
                                    unit=data.unit, host_id=data.host_id, justification=data.justification,
                                    compensating_control=data.compensating_control)
    try:
        unit_id, host_id = _scope_target(session, as_create)
    except NotFound:
        raise NotFound("no such host or unit") from None
    if unit_id is not None and not actor.scope.allows(unit_id):
        raise NotFound("no such host or unit")  # another unit's host looks like one that does not exist
    return data.target_kind, data.target, data.scope, unit_id, host_id


def approve(session: Session, *, actor: Actor, exception_id: int, comment: str | None, now: datetime,
            days: int | None = None, max_days: int = MAX_DAYS) -> RiskException:
    """Put a request in force from now, for the days asked (or fewer); its finding becomes risk-accepted."""
    actor.require(Action.approve_exception)
    row = _pending(session, exception_id=exception_id, actor=actor)
    asked = row.requested_days or max_days
    days = asked if days is None else days
    if not 1 <= days <= min(max_days, row.requested_days or max_days):
        raise InvalidInput(f"approve for 1 to {min(max_days, row.requested_days or max_days)} days")
    row.status, row.approved_by = "approved", actor.username
    row.created_at, row.expires_at = now, now + timedelta(days=days)
    row.decided_by, row.decided_at, row.decision_comment = actor.username, now, _comment(comment, required=False)
    session.add(row)
    if row.finding_id is not None:
        finding = session.get(Finding, row.finding_id)
        if finding is not None and finding.status != "fixed":
            finding.remediation_status = "risk_accepted"  # loaded and set: the audit log sees it
            session.add(finding)
    session.flush()
    return row


def reject(session: Session, *, actor: Actor, exception_id: int, comment: str | None, now: datetime) -> RiskException:
    """Refuse a request, saying why; it stays as history and never covers anything."""
    actor.require(Action.approve_exception)
    text = _comment(comment, required=True)
    row = _pending(session, exception_id=exception_id, actor=actor)
    row.status = "rejected"
    row.decided_by, row.decided_at, row.decision_comment = actor.username, now, text
    session.add(row)
    session.flush()
    return row


def _pending(session: Session, *, exception_id: int, actor: Actor) -> RiskException:
    row = get(session, scope=actor.scope, exception_id=exception_id)
    if row.status != "requested":
        raise Conflict(f"exception {row.id} is {row.status}, not awaiting a decision")
    if row.requested_by == actor.username:
        raise Forbidden("a request is decided by another administrator than the one who asked")
    return row


def _comment(text: str | None, *, required: bool) -> str | None:
    text = (text or "").strip() or None
    if required and text is None:
        raise InvalidInput("a rejection needs a comment saying why")
    if text is not None and len(text) > MAX_TEXT:
        raise InvalidInput(f"comment is longer than {MAX_TEXT} characters")
    return text
