"""Daily indicator values, frozen monthly snapshots and unit scores (CS-ATTT).

``compute`` measures every unit as of the end of one local day; ``store_day`` keeps that as the
day's working values (replaced when recomputed); ``freeze_month`` writes the snapshot day's values
once, as the immutable record the annual ranking is built from; ``recompute_month`` measures the
same day again from the stored history, which must give what was frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlmodel import Session

from collector.attestations import service as attestations
from collector.bulk import insert_many
from collector.errors import Conflict, InvalidInput, NotFound
from collector.scope import Scope
from collector.scoring import indicators
from collector.scoring.activity import local_day
from collector.scoring.indicators import Measure, Window
from collector.scoring.models import ScoreSnapshot, ScoreValue
from collector.scoring.rollup import children_of, rollup, subtree
from collector.units import service as units
from collector.units.models import Unit
from rules.scoring.model import ATTESTED, INDICATORS, ScoringModel, builtin_model


@dataclass(frozen=True, slots=True)
class UnitDay:
    """Every indicator of one unit on one day, and the score they add up to."""

    unit_id: int
    day: date
    measures: dict[str, Measure]
    model_version: str

    def score(self, model: ScoringModel, *, with_exceptions: bool = True) -> float:
        """Σ weight × value / 100; an indicator without a value scores 0 (missing evidence earns nothing)."""
        return _score(model, {ident: m.value if with_exceptions or m.value_without_exceptions is None
                              else m.value_without_exceptions for ident, m in self.measures.items()})


def compute(session: Session, *, day: date, model: ScoringModel | None = None,
            unit_ids: frozenset[int] | None = None) -> dict[int, UnitDay]:
    """Every unit's (or these units') indicators as of the end of ``day`` (Asia/Ho_Chi_Minh), from the
    stored history."""
    model = model or builtin_model()
    window = Window.of(day, units=unit_ids)
    hosts = indicators.hosts_at(session, model, window)
    units_q = select(Unit.id) if unit_ids is None else select(Unit.id).where(Unit.id.in_(unit_ids))
    ids = [u for (u,) in session.execute(units_q)]
    measures: dict[int, dict[str, Measure]] = {u: {} for u in ids}
    for ident, measure in indicators.MEASURED.items():
        for unit_id, m in measure(session, model, window, hosts).items():
            if unit_id in measures:
                measures[unit_id][ident] = m
    attested = attestations.values(session, unit_ids=ids, period=day.year, reviewed_before=window.at)
    for unit_id, found in measures.items():
        for ident in INDICATORS:
            found.setdefault(ident, Measure())  # units without hosts
        # A6 (backup and recovery) has no agent data yet: the unit attests its components like M1–M3.
        for ident in (*ATTESTED, "A6"):
            found[ident] = _attested(model, ident, attested.get(unit_id, {}))
    return {u: UnitDay(unit_id=u, day=day, measures=m, model_version=model.version) for u, m in measures.items()}


def _attested(model: ScoringModel, ident: str, rated: dict[str, float]) -> Measure:
    """Σ component share × rating (Đạt 1 / Đạt một phần 0.5 / Chưa đạt 0); nothing rated: no value."""
    shares = model.indicators[ident].components
    got = {item: rated[item] for item in shares if item in rated}
    if not got:
        return Measure()
    value = 100 * sum(shares[item] * got.get(item, 0.0) for item in shares)
    return Measure(numerator=sum(shares[i] * v for i, v in got.items()), denominator=1.0, value=value,
                   parts=[(item, shares[item], value_, {}) for item, value_ in sorted(got.items())])


def _rows(results: dict[int, UnitDay], **extra) -> list[dict]:
    return [{"unit_id": r.unit_id, "indicator": ident, "value": _round(m.value),
             "value_without_exceptions": _round(m.value_without_exceptions), "numerator": round(m.numerator, 6),
             "denominator": round(m.denominator, 6), "model_version": r.model_version, "inputs_hash": m.inputs_hash(),
             **extra}
            for r in results.values() for ident, m in sorted(r.measures.items())]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def store_day(session: Session, *, day: date, now: datetime, model: ScoringModel | None = None) -> int:
    """Compute and keep ``day``'s values (replacing an earlier computation of the same day)."""
    if indicators.end_of_day(day) > now:
        raise InvalidInput(f"{day} has not ended yet (Asia/Ho_Chi_Minh): its values would change")
    results = compute(session, day=day, model=model)
    session.execute(delete(ScoreValue).where(ScoreValue.day == day))
    return insert_many(session.connection(), ScoreValue.__table__,
                       _rows(results, day=day, computed_at=now))


def snapshot_day(period: str, model: ScoringModel | None = None) -> date:
    """The day a month's snapshot is taken (the model's snapshot day, the 14th by default)."""
    model = model or builtin_model()
    try:
        year, month = (int(p) for p in period.split("-"))
        return date(year, month, model.snapshot_day)
    except ValueError:
        raise InvalidInput(f"period must be YYYY-MM, not {period!r}") from None


def freeze_month(session: Session, *, period: str, now: datetime, model: ScoringModel | None = None) -> int:
    """Write the month's snapshot once; a frozen month is never rewritten (appeals log corrections)."""
    model = model or builtin_model()
    as_of = snapshot_day(period, model)
    if indicators.end_of_day(as_of) > now:
        raise InvalidInput(f"the {period} snapshot is taken at the end of {as_of}, which has not come yet")
    if session.execute(select(func.count()).select_from(ScoreSnapshot)
                       .where(ScoreSnapshot.period == period)).scalar_one():
        raise Conflict(f"{period} is already frozen; snapshots are never rewritten")
    results = compute(session, day=as_of, model=model)
    return insert_many(session.connection(), ScoreSnapshot.__table__,
                       _rows(results, period=period, as_of=as_of, frozen_at=now))


def freeze_due(session: Session, *, now: datetime, model: ScoringModel | None = None) -> str | None:
    """Freeze the latest month whose snapshot day has ended, unless it is frozen already (the daily job
    calls this, so a server that was down on the 15th freezes the month when it comes back)."""
    model = model or builtin_model()
    today = local_day(now)
    as_of = today.replace(day=model.snapshot_day)
    if indicators.end_of_day(as_of) > now:  # this month's snapshot day has not ended: the previous month
        as_of = (as_of.replace(day=1) - timedelta(days=1)).replace(day=model.snapshot_day)
    period = f"{as_of:%Y-%m}"
    if session.execute(select(func.count()).select_from(ScoreSnapshot)
                       .where(ScoreSnapshot.period == period)).scalar_one():
        return None
    freeze_month(session, period=period, now=now, model=model)
    return period


def recompute_month(session: Session, *, period: str, model: ScoringModel | None = None) -> list[dict]:
    """What the month's snapshot would be if computed now from the stored history (nothing written)."""
    as_of = snapshot_day(period, model)
    return _rows(compute(session, day=as_of, model=model), period=period, as_of=as_of)


def snapshot_rows(session: Session, *, period: str, unit_id: int | None = None) -> list[ScoreSnapshot]:
    """A frozen month's rows, of every unit or of one (a dashboard reads one unit's: 11 rows, not 5,500)."""
    query = select(ScoreSnapshot).where(ScoreSnapshot.period == period)
    if unit_id is not None:
        query = query.where(ScoreSnapshot.unit_id == unit_id)
    return list(session.scalars(query.order_by(ScoreSnapshot.unit_id, ScoreSnapshot.indicator)))


# ---- reading ---------------------------------------------------------------------------------------

def stored_day(session: Session, *, scope: Scope, day: date, model: ScoringModel | None = None) -> list[dict]:
    """The stored values of ``day`` for the units in scope: score, grade and each indicator; a unit with
    sub-units also gets the roll-up of its whole subtree (the units in scope)."""
    model = model or builtin_model()
    rows = session.execute(select(ScoreValue.unit_id, ScoreValue.indicator, ScoreValue.value,
                                  ScoreValue.value_without_exceptions, ScoreValue.numerator, ScoreValue.denominator,
                                  ScoreValue.model_version)
                           .where(ScoreValue.day == day, scope.where(ScoreValue.unit_id))).all()
    if not rows:
        raise NotFound(f"no scores stored for {day}: the daily job stores yesterday's; "
                       f"`khien score compute --date {day}` computes any past day")
    by_unit: dict[int, dict[str, tuple]] = {}
    versions: dict[int, str] = {}
    for unit_id, ident, value, raw, num, den, version in rows:
        by_unit.setdefault(unit_id, {})[ident] = (value, raw, num, den)
        versions[unit_id] = version
    info = {u.id: u for u in session.scalars(select(Unit).where(Unit.id.in_(by_unit)))}
    children = children_of((u.id, u.parent_id) for u in info.values())
    out = []
    for unit_id, values in sorted(by_unit.items(), key=lambda kv: info[kv[0]].code):
        score = _score(model, {i: v[0] for i, v in values.items()})
        raw = _score(model, {i: (v[1] if v[1] is not None else v[0]) for i, v in values.items()})
        item = {"unit": info[unit_id].code, "name": info[unit_id].name, "kind": info[unit_id].kind,
                "day": day.isoformat(), "model_version": versions[unit_id], "score": score,
                "score_without_exceptions": raw, "grade": model.grade_for(score).grade,
                "indicators": {i: v[0] for i, v in sorted(values.items())}}
        below = subtree(unit_id, children)
        if len(below) > 1:
            rolled = rollup(model, (by_unit[u] for u in below))
            item["rollup"] = {"units": len(below), "score": _score(model, rolled),
                              "grade": model.grade_for(_score(model, rolled)).grade, "indicators": rolled}
        out.append(item)
    return out


def history(session: Session, *, scope: Scope, unit_code: str, start: date, end: date,
            model: ScoringModel | None = None) -> dict:
    """A unit's stored daily values between two days: the score and each indicator's trend."""
    model = model or builtin_model()
    unit = units.get_visible(session, scope=scope, code=unit_code)
    if end < start or (end - start).days > 800:
        raise InvalidInput("the period must run forwards and span at most 800 days")
    rows = session.execute(select(ScoreValue.day, ScoreValue.indicator, ScoreValue.value)
                           .where(ScoreValue.unit_id == unit.id, ScoreValue.day >= start, ScoreValue.day <= end)
                           .order_by(ScoreValue.day)).all()
    days: dict[date, dict[str, float | None]] = {}
    for day, ident, value in rows:
        days.setdefault(day, {})[ident] = value
    return {"unit": unit.code, "from": start.isoformat(), "to": end.isoformat(),
            "days": [{"day": d.isoformat(), "score": _score(model, v), "indicators": v} for d, v in days.items()]}


def _score(model: ScoringModel, values: dict[str, float | None]) -> float:
    return round(sum(model.indicators[i].weight * (v or 0.0) / 100 for i, v in values.items()
                     if i in model.indicators), 2)
