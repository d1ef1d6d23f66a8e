"""People-facing exceptions API: list/get in scope; create, renew, revoke (administrators); request (units and
analysts), then approve or reject (administrators)."""

from __future__ import annotations

from fastapi import APIRouter, Body

from collector.compliance.service import builtin_checks
from collector.deps import CallerScope, CurrentActor, CurrentUser, DbDep, SessionDep
from collector.exceptions import service as exceptions
from collector.exceptions.models import (
    ExceptionDecision,
    ExceptionRequestCreate,
    RiskException,
    RiskExceptionCreate,
    RiskExceptionPublic,
)
from collector.types import utcnow

router = APIRouter(prefix="/api/v1/exceptions", tags=["exceptions"])


def _public(row: RiskException) -> RiskExceptionPublic:
    return RiskExceptionPublic(**(row.model_dump() | {"status": row.status_at(utcnow())}))


@router.get("")
def list_exceptions(session: SessionDep, scope: CallerScope, status: str | None = None) -> dict:
    return {"items": [_public(r) for r in exceptions.list_(session, scope=scope, status=status, now=utcnow())]}


@router.post("/requests", status_code=201)
def request_exception(data: ExceptionRequestCreate, db: DbDep, actor: CurrentActor) -> RiskExceptionPublic:
    """Ask for a risk acceptance (not in force until an administrator approves it)."""
    with db.transaction(actor=actor) as session:
        row = exceptions.request(session, actor=actor, data=data, now=utcnow(),
                                 known_checks=frozenset(builtin_checks().checks))
    return _public(row)


@router.post("/{exception_id}/approve")
def approve_exception(exception_id: int, data: ExceptionDecision, db: DbDep,
                      actor: CurrentActor) -> RiskExceptionPublic:
    with db.transaction(actor=actor) as session:
        row = exceptions.approve(session, actor=actor, exception_id=exception_id, comment=data.comment,
                                 days=data.days, now=utcnow())
    return _public(row)


@router.post("/{exception_id}/reject")
def reject_exception(exception_id: int, data: ExceptionDecision, db: DbDep,
                     actor: CurrentActor) -> RiskExceptionPublic:
    with db.transaction(actor=actor) as session:
        row = exceptions.reject(session, actor=actor, exception_id=exception_id, comment=data.comment, now=utcnow())
    return _public(row)


@router.get("/{exception_id}")
def get_exception(exception_id: int, session: SessionDep, scope: CallerScope) -> RiskExceptionPublic:
    return _public(exceptions.get(session, scope=scope, exception_id=exception_id))


@router.post("", status_code=201)
def create_exception(data: RiskExceptionCreate, db: DbDep, user: CurrentUser,
                     actor: CurrentActor) -> RiskExceptionPublic:
    with db.transaction(actor=actor) as session:
        row = exceptions.create(session, data=data, approver=user.username, approver_role=user.role, now=utcnow(),
                                known_checks=frozenset(builtin_checks().checks))
    return _public(row)


@router.post("/{exception_id}/renew")
def renew_exception(exception_id: int, db: DbDep, user: CurrentUser, actor: CurrentActor,
                    days: int = Body(90, embed=True)) -> RiskExceptionPublic:
    with db.transaction(actor=actor) as session:
        row = exceptions.renew(session, exception_id=exception_id, approver=user.username,
                               approver_role=user.role, days=days, now=utcnow())
    return _public(row)


@router.post("/{exception_id}/revoke")
def revoke_exception(exception_id: int, db: DbDep, user: CurrentUser, actor: CurrentActor,
                     reason: str = Body(..., embed=True, max_length=4000)) -> RiskExceptionPublic:
    with db.transaction(actor=actor) as session:
        row = exceptions.revoke(session, exception_id=exception_id, by=user.username, by_role=user.role,
                                reason=reason, now=utcnow())
    return _public(row)
