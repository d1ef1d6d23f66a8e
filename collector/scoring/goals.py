"""Plan goals' progress (rules/data/goals/), province-wide or for one unit, from the stored daily values.

Each goal's metric becomes a daily series — an indicator directly, or what the stored indicators and
rated attestations say about it — and ``rules.goals.progress`` turns the series into the current
value, whether the target is met, the trend and the projected date of reaching it. Province-wide
values are the mean over the units that have one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from statistics import fmean
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from collector.attestations.models import Attestation
from collector.findings.models import Finding
from collector.scope import Scope
from collector.scoring.indicators import VULN_KINDS, end_of_day
from collector.scoring.models import ScoreValue
from collector.units import service as units
from rules.goals import TREND_DAYS, GoalSet, load_goals, progress

# Metrics read from one stored indicator (the closest measure the model has of them).
FROM_INDICATOR = {"servers_monitored_pct": "A1", "antimalware_managed_pct": "A4", "offline_backup_pct": "A6",
                  "incidents_reported_on_time_pct": "A8"}
# Metrics that are the share of units with these attestation items rated Đạt for the year.
FROM_ATTESTATION = {"systems_level_approved_pct": ("level_approved",),
                    "plans_fully_implemented_pct": ("plan_implemented",),
                    "officer_designated_pct": ("rules_and_officer",), "training_and_drill_pct": ("training", "drill")}


def goal_progress(session: Session, *, scope: Scope, today: date, unit_code: str | None = None,
                  goals: GoalSet | None = None) -> dict[str, Any]:
    """Every goal's progress for the province (the caller's units) or for one unit."""
    goals = goals or load_goals()
    if unit_code is None:
        unit_ids = None if scope.all_units else set(scope.unit_ids)
        where = "province"
    else:
        unit = units.get_visible(session, scope=scope, code=unit_code)
        unit_ids, where = {unit.id}, "unit"
    start = today - timedelta(days=TREND_DAYS)
    daily = _daily(session, unit_ids=unit_ids, start=start, end=today)
    rated = _rated(session, unit_ids=unit_ids, year=today.year)
    out = []
    for goal in goals.goals:
        if where not in goal.scope:
            continue
        if goal.metric == "overdue_p0_critical_count":
            series = [(today, float(_overdue_critical(session, unit_ids=unit_ids, at=end_of_day(today))))]
        else:
            series = _series(goal.metric, daily, rated, today)
        result = progress(goal, series, today=today)
        out.append({"id": goal.id, "title": dict(goal.title), "metric": goal.metric, "unit": goal.unit,
                    "comparison": goal.comparison, "target": goal.target, "deadline": goal.deadline.isoformat(),
                    "scored": goal.scored, "current": result.current, "met": result.met,
                    "trend_per_day": result.trend_per_day,
                    "projected_date": result.projected_date.isoformat() if result.projected_date else None,
                    "on_track": result.on_track, "days_left": result.days_left, "points": len(series)})
    return {"scope": where, "unit": unit_code, "day": today.isoformat(), "goals": out}


def _daily(session: Session, *, unit_ids: set[int] | None, start: date, end: date) -> dict[str, dict[date, float]]:
    """Indicator -> day -> the mean over units of the stored values."""
    query = select(ScoreValue.day, ScoreValue.indicator, ScoreValue.value).where(
        ScoreValue.day >= start, ScoreValue.day <= end, ScoreValue.value.is_not(None))
    if unit_ids is not None:
        query = query.where(ScoreValue.unit_id.in_(unit_ids))
    values: dict[str, dict[date, list[float]]] = defaultdict(lambda: defaultdict(list))
    for day, ident, value in session.execute(query):
        values[ident][day].append(value)
    return {ident: {d: fmean(v) for d, v in days.items()} for ident, days in values.items()}


def _rated(session: Session, *, unit_ids: set[int] | None, year: int) -> dict[int, dict[str, float]]:
    query = select(Attestation.unit_id, Attestation.item, Attestation.rating_value).where(
        Attestation.period == year, Attestation.status == "rated")
    if unit_ids is not None:
        query = query.where(Attestation.unit_id.in_(unit_ids))
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for unit_id, item, value in session.execute(query.order_by(Attestation.reviewed_at, Attestation.id)):
        out[unit_id][item] = value
    return out


def _series(metric: str, daily: dict[str, dict[date, float]], rated: dict[int, dict[str, float]],
            today: date) -> list[tuple[date, float]]:
    ident = metric.removeprefix("indicator:") if metric.startswith("indicator:") else FROM_INDICATOR.get(metric)
    if ident is not None:
        return sorted(daily.get(ident, {}).items())
    if metric in FROM_ATTESTATION and rated:
        items = FROM_ATTESTATION[metric]
        met = sum(1 for r in rated.values() if all(r.get(i) == 1 for i in items))
        return [(today, 100 * met / len(rated))]
    return []  # security spending and the like: reported, not measured here


def _overdue_critical(session: Session, *, unit_ids: set[int] | None, at) -> int:
    """Open P0/P1 vulnerabilities past their deadline now (a live count: there is no daily history of it)."""
    query = select(func.count()).select_from(Finding).where(
        Finding.kind.in_(VULN_KINDS), Finding.finding_class.in_(("P0", "P1")), Finding.fixed_at.is_(None),
        Finding.due_at < at)
    if unit_ids is not None:
        query = query.where(Finding.unit_id.in_(unit_ids))
    return session.execute(query).scalar_one()
