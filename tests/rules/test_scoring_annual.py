"""Annual score, grade, adjustments and ranking from monthly snapshots (rules.scoring.annual)."""

from __future__ import annotations

import pytest

from rules.scoring.annual import AppliedAdjustment, annual_score, rank
from rules.scoring.model import ATTESTED, MEASURED, load_model

MODEL = load_model()


def month(value: float, **override: float | None) -> dict[str, float | None]:
    return {i: value for i in MEASURED} | override


def full(value: float) -> dict[str, float]:
    return {i: value for i in ATTESTED}


def test_score_is_weighted_mean_of_valid_months_plus_attested():
    # 12 months: 10 at 80 and 2 where A1 fell under 50 (invalid: not averaged in)
    months = [month(80)] * 10 + [month(0, A1=40)] * 2
    result = annual_score(MODEL, unit_id=1, months=months, attested=full(50))
    assert result.valid_months == 10
    measured = sum(MODEL.indicators[i].weight for i in MEASURED)  # 78
    assert result.score == pytest.approx(measured * 0.8 + (100 - measured) * 0.5)  # 62.4 + 11 = 73.4
    assert result.grade == "B"
    assert result.indicators["A2"] == 80 and result.points["A2"] == pytest.approx(18 * 0.8)


def test_not_enough_valid_months_gives_no_score_or_grade():
    result = annual_score(MODEL, unit_id=1, months=[month(95)] * 9 + [month(95, A1=49.9)] * 3, attested=full(100))
    assert result.score is None and result.grade is None and not result.ranked and result.valid_months == 9


def test_missing_values_score_zero_and_are_not_averaged():
    months = [month(100, A7=None)] * 6 + [month(100, A7=50)] * 6
    result = annual_score(MODEL, unit_id=1, months=months, attested={"M1": 100, "M2": None, "M3": None})
    assert result.indicators["A7"] == 50  # the mean of the months that had a value
    assert result.points["M2"] == 0 and result.score == pytest.approx(100 - 7 * 0.5 - 6 - 6)


def test_adjustments_points_caps_forced_grade_and_clipping():
    months = [month(90)] * 12
    base = annual_score(MODEL, unit_id=1, months=months, attested=full(90))
    assert base.score == 90 and base.grade == "A"
    late = AppliedAdjustment("incident_unreported", "reported after 5 days", "admin")
    capped = annual_score(MODEL, unit_id=1, months=months, attested=full(90), adjustments=[late])
    assert capped.score == 80 and capped.grade == "C" and capped.capped_by == "incident_unreported"
    bonus = [AppliedAdjustment("bonus", "pentest done, highs closed", "admin", points=4),
             AppliedAdjustment("bonus", "no overdue P0 all year", "admin", points=4)]
    boosted = annual_score(MODEL, unit_id=1, months=months, attested=full(90), adjustments=bonus)
    assert boosted.adjustment_points == 5 and boosted.score == 95  # bonuses together capped at +5
    top = annual_score(MODEL, unit_id=1, months=[month(100)] * 12, attested=full(100), adjustments=bonus)
    assert top.score == 100  # clipped
    false = AppliedAdjustment("false_evidence", "forged drill report", "admin")
    forced = annual_score(MODEL, unit_id=1, months=months, attested=full(90), adjustments=[false])
    assert forced.grade == "E" and forced.score == 90
    with pytest.raises(ValueError, match="unknown adjustment 'gift'"):
        annual_score(MODEL, unit_id=1, months=months, attested=full(90),
                     adjustments=[AppliedAdjustment("gift", "", "x")])


def test_ranking_per_peer_group_with_tie_breaks_and_unranked_last():
    def unit(uid: int, value: float, *, overdue: float = 0, a2: float | None = None, months: int = 12):
        return annual_score(MODEL, unit_id=uid, months=[month(value, A2=a2 if a2 is not None else value)] * months,
                            attested=full(value), overdue_p0_critical_days=overdue)

    # 1 and 2 score the same; 2 has fewer overdue P0/critical days. 3 and 4 tie on everything.
    a2_low, a2_high = unit(5, 80, a2=70), unit(6, 80, a2=90)
    assert a2_low.score != a2_high.score
    results = [unit(1, 80, overdue=30), unit(2, 80, overdue=3), unit(3, 70), unit(4, 70), unit(7, 99, months=5),
               unit(8, 60), unit(9, 95)]
    kinds = {1: "department", 2: "department", 3: "department", 4: "department", 7: "department", 8: "commune",
             9: "province"}
    groups = rank(MODEL, results, kinds=kinds)
    assert set(groups) == {"departments", "communes", "districts"} and groups["districts"] == []
    order = [(r.unit_id, r.rank) for r in groups["departments"]]
    assert order == [(2, 1), (1, 2), (3, 3), (4, 3), (7, None)]
    assert [(r.unit_id, r.rank) for r in groups["communes"]] == [(8, 1)]  # the province is in no group


def test_equal_score_falls_to_mean_a2_then_mean_a1():
    same = [month(80, A2=70, A3=90)] * 12  # A2 lower, A3 higher: the same total as below
    other = [month(80, A2=80, A3=77.142857142857)] * 12
    r1 = annual_score(MODEL, unit_id=1, months=same, attested=full(80))
    r2 = annual_score(MODEL, unit_id=2, months=other, attested=full(80))
    assert r1.score == r2.score
    ranked = rank(MODEL, [r1, r2], kinds={1: "commune", 2: "commune"})["communes"]
    assert [r.unit_id for r in ranked] == [2, 1] and [r.rank for r in ranked] == [1, 2]
