"""People-facing scores API: stored daily scores, a unit's explanation and history, frozen snapshots,
and the annual ranking. Every read is scoped to the caller's units."""

from __future__ import annotations

import json
from datetime import date, timedelta

from fastapi import APIRouter
from sqlalchemy import select

from collector.deps import CallerScope, CurrentActor, CurrentUser, DbDep, SessionDep
from collector.errors import InvalidInput
from collector.scoring import explain as explaining
from collector.scoring import goals, ranking, review
from collector.scoring import service as scoring
from collector.scoring.activity import local_day
from collector.scoring.models import AdjustmentCreate, AppealCreate, AppealDecision, ScoreSnapshot
from collector.types import utcnow
from collector.units.models import Unit

router = APIRouter(prefix="/api/v1/scores", tags=["scores"])


def _day(text: str | None) -> date:
    if text is None:
        return local_day(utcnow()) - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"day must be YYYY-MM-DD, not {text!r}") from None


@router.get("")
def list_scores(session: SessionDep, scope: CallerScope, day: str | None = None) -> dict:
    """Every unit in scope on one day (default yesterday, Asia/Ho_Chi_Minh), from the stored values."""
    return {"items": scoring.stored_day(session, scope=scope, day=_day(day))}


@router.get("/ranking/{year}")
def get_ranking(year: int, session: SessionDep, scope: CallerScope) -> dict:
    """The year's ranking per peer group (units, grades, ranks, indicator values — nothing host-level)."""
    report = json.loads(ranking.to_json(ranking.annual_cached(session, year=year, now=utcnow())))
    if not scope.all_units:  # a unit officer sees the published shape, limited to the units it may see
        codes = set(session.execute(select(Unit.code).where(scope.where(Unit.id))).scalars())
        report["units"] = [u for u in report["units"] if u["unit"] in codes]
    return report


@router.get("/snapshots/{period}")
def get_snapshot(period: str, session: SessionDep, scope: CallerScope) -> dict:
    scoring.snapshot_day(period)  # validates YYYY-MM
    rows = session.scalars(select(ScoreSnapshot).where(ScoreSnapshot.period == period,
                                                       scope.where(ScoreSnapshot.unit_id))
                           .order_by(ScoreSnapshot.unit_id, ScoreSnapshot.indicator)).all()
    return {"period": period, "items": [r.model_dump(exclude={"id"}) for r in rows]}


@router.get("/{unit}/explain")
def explain_unit(unit: str, session: SessionDep, scope: CallerScope, day: str | None = None) -> dict:
    """The unit's score by indicator and the hosts, findings and checks behind every lost point."""
    return explaining.explain_cached(session, scope=scope, unit_code=unit, day=_day(day))


@router.get("/{unit}/history")
def unit_history(unit: str, session: SessionDep, scope: CallerScope, start: str | None = None,
                 end: str | None = None) -> dict:
    """The unit's stored daily score and indicators between two days (default: the last 90 days)."""
    last = _day(end)
    first = _day(start) if start else last - timedelta(days=89)
    return scoring.history(session, scope=scope, unit_code=unit, start=first, end=last)


# ---- adjustments, appeals, publication ------------------------------------------------------------

@router.get("/adjustments/{year}")
def list_adjustments(year: int, session: SessionDep, scope: CallerScope) -> dict:
    return {"items": [r.model_dump() for r in review.adjustments(session, scope=scope, year=year)]}


@router.post("/adjustments", status_code=201)
def add_adjustment(data: AdjustmentCreate, db: DbDep, user: CurrentUser, actor: CurrentActor) -> dict:
    with db.transaction(actor=actor) as session:
        row = review.add_adjustment(session, unit_code=data.unit, year=data.year, kind=data.kind, reason=data.reason,
                                    points=data.points, by=user.username, by_role=user.role, now=utcnow())
        return row.model_dump()


@router.post("/adjustments/{adjustment_id}/revoke")
def revoke_adjustment(adjustment_id: int, db: DbDep, user: CurrentUser, actor: CurrentActor) -> dict:
    with db.transaction(actor=actor) as session:
        return review.revoke_adjustment(session, adjustment_id=adjustment_id, by=user.username, by_role=user.role,
                                        now=utcnow()).model_dump()


@router.get("/appeals")
def list_appeals(session: SessionDep, scope: CallerScope, period: str | None = None,
                 status: str | None = None) -> dict:
    return {"items": [r.model_dump() for r in review.appeals(session, scope=scope, period=period, status=status)]}


@router.post("/appeals", status_code=201)
def file_appeal(data: AppealCreate, db: DbDep, user: CurrentUser, actor: CurrentActor, scope: CallerScope) -> dict:
    with db.transaction(actor=actor) as session:
        return review.file_appeal(session, scope=scope, unit_code=data.unit, period=data.period,
                                  indicator=data.indicator, reason=data.reason, by=user.username, by_role=user.role,
                                  now=utcnow()).model_dump()


@router.post("/appeals/{appeal_id}/decide")
def decide_appeal(appeal_id: int, data: AppealDecision, db: DbDep, user: CurrentUser, actor: CurrentActor) -> dict:
    with db.transaction(actor=actor) as session:
        return review.decide_appeal(session, appeal_id=appeal_id, accept=data.accept, decision=data.decision,
                                    corrected_value=data.corrected_value, by=user.username, by_role=user.role,
                                    now=utcnow()).model_dump()


@router.post("/ranking/{year}/publish", status_code=201)
def publish_ranking(year: int, db: DbDep, user: CurrentUser, actor: CurrentActor) -> dict:
    with db.transaction(actor=actor) as session:
        return review.publish(session, year=year, by=user.username, by_role=user.role, now=utcnow()).model_dump()


@router.delete("/ranking/{year}/publish", status_code=204)
def unpublish_ranking(year: int, db: DbDep, user: CurrentUser, actor: CurrentActor) -> None:
    with db.transaction(actor=actor) as session:
        review.unpublish(session, year=year, by_role=user.role)


@router.get("/goals/progress")
def goals_progress(session: SessionDep, scope: CallerScope, unit: str | None = None, day: str | None = None) -> dict:
    """The plans' goals: current value, met, trend, projected date — province-wide or for one unit."""
    return goals.goal_progress(session, scope=scope, today=_day(day), unit_code=unit)
