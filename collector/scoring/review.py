"""What people add to the computed scores: adjustments (bonus/penalty, with reason and approver),
appeals against frozen snapshot values (an accepted appeal is the logged correction; the snapshot row
is never changed), and the publication of a year's ranking for the public page.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from collector.access import Action, roles_with
from collector.errors import Conflict, Forbidden, InvalidInput, NotFound
from collector.scope import Scope
from collector.scoring.activity import local_day
from collector.scoring.models import PublishedRanking, ScoreAdjustment, ScoreAppeal, ScoreSnapshot
from collector.units import service as units
from rules.scoring.annual import AppliedAdjustment
from rules.scoring.model import INDICATORS, ScoringModel, builtin_model

REVIEWERS = roles_with(Action.govern_scores)
APPELLANTS = roles_with(Action.submit_evidence)
MIN_REASON = 10


def _require(role: str, allowed: frozenset[str], what: str) -> None:
    if role not in allowed:
        raise Forbidden(f"{what} needs the role {' or '.join(sorted(allowed))}")


def _reason(text: str, what: str) -> str:
    text = (text or "").strip()
    if len(text) < MIN_REASON:
        raise InvalidInput(f"{what} must say why (at least {MIN_REASON} characters)")
    return text


# ---- adjustments -----------------------------------------------------------------------------------

def add_adjustment(session: Session, *, unit_code: str, year: int, kind: str, reason: str, by: str, by_role: str,
                   now: datetime, points: float | None = None, model: ScoringModel | None = None) -> ScoreAdjustment:
    model = model or builtin_model()
    _require(by_role, REVIEWERS, "an adjustment")
    rule = model.adjustments.get(kind)
    if rule is None:
        raise InvalidInput(f"unknown adjustment {kind!r}; choose from {', '.join(model.adjustments)}")
    if rule.max_points is not None:
        if points is None or not 0 < points <= rule.max_points:
            raise InvalidInput(f"a bonus needs points between 0 and {rule.max_points:g}")
    elif points is not None:
        raise InvalidInput(f"{kind} takes the model's points ({rule.points:g}); do not give points")
    if not 2015 <= year <= local_day(now).year:
        raise InvalidInput(f"year must be between 2015 and {local_day(now).year}")
    unit = units.get_by_code(session, code=unit_code)
    row = ScoreAdjustment(unit_id=unit.id, year=year, kind=kind, points=points, reason=_reason(reason, "an adjustment"),
                          approved_by=by, created_at=now)
    session.add(row)
    session.flush()
    return row


def revoke_adjustment(session: Session, *, adjustment_id: int, by: str, by_role: str, now: datetime) -> ScoreAdjustment:
    _require(by_role, REVIEWERS, "revoking an adjustment")
    row = session.get(ScoreAdjustment, adjustment_id)
    if row is None:
        raise NotFound(f"no adjustment {adjustment_id}")
    if row.revoked_at is not None:
        raise Conflict(f"adjustment {adjustment_id} was revoked already")
    row.revoked_at, row.revoked_by = now, by
    session.add(row)
    return row


def adjustments(session: Session, *, scope: Scope, year: int) -> list[ScoreAdjustment]:
    return list(session.scalars(select(ScoreAdjustment).where(ScoreAdjustment.year == year,
                                                              scope.where(ScoreAdjustment.unit_id))
                                .order_by(ScoreAdjustment.id)))


def applied(session: Session, *, year: int) -> dict[int, list[AppliedAdjustment]]:
    """The adjustments in force for a year, per unit, as the annual score takes them."""
    out: dict[int, list[AppliedAdjustment]] = defaultdict(list)
    for row in session.scalars(select(ScoreAdjustment).where(ScoreAdjustment.year == year,
                                                             ScoreAdjustment.revoked_at.is_(None))):
        out[row.unit_id].append(AppliedAdjustment(row.kind, row.reason, row.approved_by, row.points))
    return out


# ---- appeals ---------------------------------------------------------------------------------------

def working_days_after(day: date, count: int) -> date:
    """The date ``count`` working days (Monday–Friday) after ``day``; public holidays are not modelled."""
    current, left = day, count
    while left > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    return current


def appeal_deadline(session: Session, *, period: str, unit_id: int, model: ScoringModel | None = None) -> date:
    model = model or builtin_model()
    frozen = session.execute(select(func.min(ScoreSnapshot.frozen_at)).where(
        ScoreSnapshot.period == period, ScoreSnapshot.unit_id == unit_id)).scalar_one()
    if frozen is None:
        raise NotFound(f"no frozen snapshot of {period} for this unit")
    return working_days_after(local_day(frozen), model.appeal_working_days)


def file_appeal(session: Session, *, scope: Scope, unit_code: str, period: str, indicator: str, reason: str,
                by: str, by_role: str, now: datetime, model: ScoringModel | None = None) -> ScoreAppeal:
    _require(by_role, APPELLANTS, "an appeal")
    unit = units.get_visible(session, scope=scope, code=unit_code)
    if indicator not in INDICATORS:
        raise InvalidInput(f"unknown indicator {indicator!r}; choose from {', '.join(INDICATORS)}")
    closes = appeal_deadline(session, period=period, unit_id=unit.id, model=model)
    if local_day(now) > closes:
        raise InvalidInput(f"the appeal window for {period} closed on {closes} "
                           f"({(model or builtin_model()).appeal_working_days} working days after the snapshot)")
    pending = session.execute(select(func.count()).select_from(ScoreAppeal).where(
        ScoreAppeal.period == period, ScoreAppeal.unit_id == unit.id, ScoreAppeal.indicator == indicator,
        ScoreAppeal.status == "pending")).scalar_one()
    if pending:
        raise Conflict(f"an appeal of {indicator} for {period} is already waiting for a decision")
    row = ScoreAppeal(period=period, unit_id=unit.id, indicator=indicator, reason=_reason(reason, "an appeal"),
                      submitted_by=by, submitted_at=now)
    session.add(row)
    session.flush()
    return row


def decide_appeal(session: Session, *, appeal_id: int, accept: bool, decision: str, by: str, by_role: str,
                  now: datetime, corrected_value: float | None = None) -> ScoreAppeal:
    _require(by_role, REVIEWERS, "deciding an appeal")
    row = session.get(ScoreAppeal, appeal_id)
    if row is None:
        raise NotFound(f"no appeal {appeal_id}")
    if row.status != "pending":
        raise Conflict(f"appeal {appeal_id} was {row.status} already")
    if accept and (corrected_value is None or not 0 <= corrected_value <= 100):
        raise InvalidInput("accepting an appeal needs the corrected value (0–100)")
    if not accept and corrected_value is not None:
        raise InvalidInput("a rejected appeal corrects nothing")
    row.status = "accepted" if accept else "rejected"
    row.corrected_value = corrected_value
    row.decision, row.decided_by, row.decided_at = _reason(decision, "a decision"), by, now
    session.add(row)
    return row


def appeals(session: Session, *, scope: Scope, period: str | None = None,
            status: str | None = None) -> list[ScoreAppeal]:
    query = select(ScoreAppeal).where(scope.where(ScoreAppeal.unit_id))
    if period:
        query = query.where(ScoreAppeal.period == period)
    if status:
        query = query.where(ScoreAppeal.status == status)
    return list(session.scalars(query.order_by(ScoreAppeal.id)))


def corrections(session: Session, *, periods: list[str]) -> dict[tuple[str, int, str], float]:
    """Accepted corrections: (period, unit, indicator) -> the corrected value (the latest decision wins)."""
    rows = session.execute(select(ScoreAppeal.period, ScoreAppeal.unit_id, ScoreAppeal.indicator,
                                  ScoreAppeal.corrected_value)
                           .where(ScoreAppeal.period.in_(periods), ScoreAppeal.status == "accepted")
                           .order_by(ScoreAppeal.decided_at, ScoreAppeal.id))
    return {(p, u, i): v for p, u, i, v in rows}


# ---- publication -----------------------------------------------------------------------------------

def publish(session: Session, *, year: int, by: str, by_role: str, now: datetime) -> PublishedRanking:
    _require(by_role, REVIEWERS, "publishing a ranking")
    if not session.execute(select(func.count()).select_from(ScoreSnapshot)
                           .where(ScoreSnapshot.period.like(f"{year}-%"))).scalar_one():
        raise NotFound(f"no frozen snapshots for {year}: nothing to publish")
    if session.get(PublishedRanking, year) is not None:
        raise Conflict(f"the {year} ranking is published already")
    row = PublishedRanking(year=year, published_by=by, published_at=now)
    session.add(row)
    return row


def unpublish(session: Session, *, year: int, by_role: str) -> None:
    _require(by_role, REVIEWERS, "withdrawing a published ranking")
    row = session.get(PublishedRanking, year)
    if row is None:
        raise NotFound(f"the {year} ranking is not published")
    session.delete(row)


def published_years(session: Session) -> list[int]:
    return list(session.scalars(select(PublishedRanking.year).order_by(PublishedRanking.year.desc())))
