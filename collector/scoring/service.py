"""Daily indicator values, frozen monthly snapshots and unit scores (CS-ATTT).

``compute`` measures every unit as of the end of one local day; ``store_day`` keeps that as the
day's working values (replaced when recomputed); ``freeze_month`` writes the snapshot day's values
once, as the immutable record the annual ranking is built from; ``recompute_month`` measures the
same day again from the stored history, which must give what was frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, func, select
from sqlmodel import Session

from collector.attestations import service as attestations
from collector.bulk import insert_many
from collector.errors import Conflict, InvalidInput
from collector.scoring import indicators
from collector.scoring.indicators import Measure, Window
from collector.scoring.models import ScoreSnapshot, ScoreValue
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
        total = 0.0
        for ident, m in self.measures.items():
            value = m.value if with_exceptions or m.value_without_exceptions is None else m.value_without_exceptions
            total += model.indicators[ident].weight * (value or 0.0) / 100
        return round(total, 2)


def compute(session: Session, *, day: date, model: ScoringModel | None = None) -> dict[int, UnitDay]:
    """Every unit's indicators as of the end of ``day`` (Asia/Ho_Chi_Minh), from the stored history."""
    model = model or builtin_model()
    window = Window.of(day)
    hosts = indicators.hosts_at(session, model, window)
    unit_ids = [u for (u,) in session.execute(select(Unit.id))]
    measures: dict[int, dict[str, Measure]] = {u: {} for u in unit_ids}
    for ident, measure in indicators.MEASURED.items():
        for unit_id, m in measure(session, model, window, hosts).items():
            if unit_id in measures:
                measures[unit_id][ident] = m
    attested = attestations.values(session, unit_ids=unit_ids, period=day.year, reviewed_before=window.at)
    for unit_id, found in measures.items():
        for ident in INDICATORS:
            found.setdefault(ident, Measure())  # A6 (no data source yet) and units without hosts
        for ident in ATTESTED:
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


def recompute_month(session: Session, *, period: str, model: ScoringModel | None = None) -> list[dict]:
    """What the month's snapshot would be if computed now from the stored history (nothing written)."""
    as_of = snapshot_day(period, model)
    return _rows(compute(session, day=as_of, model=model), period=period, as_of=as_of)


def snapshot_rows(session: Session, *, period: str) -> list[ScoreSnapshot]:
    return list(session.scalars(select(ScoreSnapshot).where(ScoreSnapshot.period == period)
                                .order_by(ScoreSnapshot.unit_id, ScoreSnapshot.indicator)))
