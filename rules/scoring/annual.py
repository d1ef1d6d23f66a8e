"""The annual score, grade and ranking of units, from their monthly snapshots (pure: no database).

Annual score = Σ measured weight × mean of the valid months' indicator values
             + Σ attested weight × the value at the last snapshot of the year
             + adjustments, clipped to 0–100.
A month is valid when its A1 reaches the model's threshold; fewer valid months than the model asks
gives "not enough data": no grade and no rank, listed after the ranked units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rules.scoring.model import ATTESTED, GRADES, MEASURED, ScoringModel


@dataclass(frozen=True, slots=True)
class AppliedAdjustment:
    """An adjustment granted to a unit for the year, with why and who approved it."""

    kind: str  # an id of the model's adjustments
    reason: str
    approved_by: str
    points: float | None = None  # the bonus granted (capped by the model); others take the model's points


@dataclass(frozen=True, slots=True)
class AnnualScore:
    unit_id: int
    score: float | None  # None: not enough data
    grade: str | None
    valid_months: int
    indicators: dict[str, float | None]  # the yearly value of each indicator (0–100)
    points: dict[str, float]  # what each indicator contributed to the score
    adjustment_points: float
    capped_by: str | None = None  # the adjustment that capped or forced the grade
    tie_values: dict[str, float] = field(default_factory=dict)

    @property
    def ranked(self) -> bool:
        return self.score is not None


def annual_score(model: ScoringModel, *, unit_id: int, months: Sequence[Mapping[str, float | None]],
                 attested: Mapping[str, float | None], adjustments: Iterable[AppliedAdjustment] = (),
                 overdue_p0_critical_days: float = 0.0, min_valid_months: int | None = None) -> AnnualScore:
    """``months``: each monthly snapshot's indicator values (0–100, None when not computable);
    ``attested``: M1–M3 at the year's last snapshot (0–100); ``min_valid_months`` overrides the model's
    (a provisional ranking of a year still running has fewer months to give)."""
    threshold = model.valid_month_min_a1
    valid = [m for m in months if m.get("A1") is not None and m["A1"] >= threshold - 1e-9]
    yearly: dict[str, float | None] = {}
    for ident in MEASURED:
        values = [m[ident] for m in valid if m.get(ident) is not None]
        yearly[ident] = sum(values) / len(values) if values else None
    for ident in ATTESTED:
        yearly[ident] = attested.get(ident)
    ties = {"overdue_p0_critical_days": overdue_p0_critical_days,
            **{f"mean:{i}": (v if v is not None else 0.0) for i, v in yearly.items()}}
    if len(valid) < (model.min_valid_months if min_valid_months is None else min_valid_months):
        return AnnualScore(unit_id=unit_id, score=None, grade=None, valid_months=len(valid), indicators=yearly,
                           points={}, adjustment_points=0.0, tie_values=ties)
    # An indicator with no value (e.g. no internet-facing address for A7, nothing attested) scores 0:
    # missing evidence must not raise a unit above one that supplied it.
    points = {i: model.indicators[i].weight * (yearly[i] or 0.0) / 100 for i in MEASURED + ATTESTED}
    adj_points, cap, forced = _adjust(model, adjustments)
    score = min(100.0, max(0.0, sum(points.values()) + adj_points))
    grade = model.grade_for(score).grade
    capped_by = None
    if cap is not None and GRADES.index(grade) < GRADES.index(cap[0]):
        grade, capped_by = cap
    if forced is not None:
        grade, capped_by = forced
    return AnnualScore(unit_id=unit_id, score=round(score, 2), grade=grade, valid_months=len(valid),
                       indicators=yearly, points={k: round(v, 4) for k, v in points.items()},
                       adjustment_points=adj_points, capped_by=capped_by, tie_values=ties)


def _adjust(model: ScoringModel, adjustments: Iterable[AppliedAdjustment]
            ) -> tuple[float, tuple[str, str] | None, tuple[str, str] | None]:
    """(points, worst grade cap as (grade, adjustment), forced grade as (grade, adjustment))."""
    points = 0.0
    bonus = 0.0
    cap: tuple[str, str] | None = None
    forced: tuple[str, str] | None = None
    for adj in adjustments:
        rule = model.adjustments.get(adj.kind)
        if rule is None:
            raise ValueError(f"unknown adjustment {adj.kind!r}; known: {', '.join(model.adjustments)}")
        if rule.max_points is not None:  # a bonus: granted points, all bonuses together capped
            bonus += max(0.0, adj.points or 0.0)
            continue
        points += rule.points
        if rule.grade_cap is not None and (cap is None or GRADES.index(rule.grade_cap) > GRADES.index(cap[0])):
            cap = (rule.grade_cap, adj.kind)
        if rule.grade is not None and (forced is None or GRADES.index(rule.grade) > GRADES.index(forced[0])):
            forced = (rule.grade, adj.kind)
    bonus_rule = next((r for r in model.adjustments.values() if r.max_points is not None), None)
    if bonus_rule is not None:
        points += min(bonus, bonus_rule.max_points or 0.0)
    return points, cap, forced


@dataclass(frozen=True, slots=True)
class Ranked:
    group: str
    rank: int | None  # None: not enough data (listed last)
    unit_id: int
    result: AnnualScore


def rank(model: ScoringModel, results: Iterable[AnnualScore], *, kinds: Mapping[int, str]) -> dict[str, list[Ranked]]:
    """Each peer group's units in rank order; equal scores are ordered by the model's tie-breaks and
    share a rank only when every tie-break is equal too. Units whose kind is in no group are left out."""
    groups: dict[str, list[AnnualScore]] = {g: [] for g in model.peer_groups}
    for result in results:
        group = model.peer_group_of(kinds.get(result.unit_id, ""))
        if group is not None:
            groups[group.id].append(result)

    def key(r: AnnualScore) -> tuple:
        ties = tuple(r.tie_values.get(t.key, 0.0) * (1 if t.order == "asc" else -1) for t in model.tie_breaks)
        return (-(r.score or 0.0), *ties)

    out: dict[str, list[Ranked]] = {}
    for group, members in groups.items():
        scored = sorted((r for r in members if r.ranked), key=lambda r: (key(r), r.unit_id))
        ranked: list[Ranked] = []
        for position, r in enumerate(scored, 1):
            same = ranked and key(ranked[-1].result) == key(r)
            ranked.append(Ranked(group, ranked[-1].rank if same else position, r.unit_id, r))
        unranked = sorted((r for r in members if not r.ranked), key=lambda r: r.unit_id)
        out[group] = ranked + [Ranked(group, None, r.unit_id, r) for r in unranked]
    return out
