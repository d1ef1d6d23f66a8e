"""Adjustments, appeals against frozen values, and publication — and what each does to the ranking."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from collector.errors import Conflict, Forbidden, InvalidInput, NotFound
from collector.scope import Scope
from collector.scoring import ranking, review
from collector.scoring.models import ScoreSnapshot
from tests.collector import helpers as h
from tests.collector import test_ranking
from tests.collector.test_ranking import NOW, snapshots

ALL = Scope.everything()
province = test_ranking.province  # the fixture: six units with snapshots of 2025 and 2026


def ranked(db, year: int = 2025) -> dict[str, tuple]:
    """The ranking as the pages read it (cached): every change below must show at once."""
    with db.session() as s:
        report = ranking.annual_cached(s, year=year, now=NOW)
    return {report.units[r.unit_id].code: (r.rank, r.result.score, r.result.grade, r.result.capped_by)
            for g in report.groups.values() for r in g}


def test_adjustments_change_the_ranking_and_are_recorded_with_approver(db, province):
    assert ranked(db)["STC"] == (1, 90.0, "A", None)
    with db.transaction() as s:
        late = review.add_adjustment(s, unit_code="STC", year=2025, kind="incident_unreported", by="boss",
                                     by_role="admin", reason="ransomware incident reported after 9 days", now=NOW)
    assert ranked(db)["STC"] == (2, 80.0, "C", "incident_unreported")
    assert ranked(db)["SYT"][0] == 1
    with db.transaction() as s:
        review.add_adjustment(s, unit_code="SYT", year=2025, kind="bonus", points=4, by="boss", by_role="admin",
                              reason="pentest done and every high finding closed", now=NOW)
        review.revoke_adjustment(s, adjustment_id=late.id, by="boss", by_role="admin", now=NOW)
    assert ranked(db)["SYT"] == (1, 94.0, "A", None) and ranked(db)["STC"] == (2, 90.0, "A", None)
    with db.session() as s:
        rows = review.adjustments(s, scope=ALL, year=2025)
    assert [(r.kind, r.approved_by, r.revoked_by) for r in rows] == [("incident_unreported", "boss", "boss"),
                                                                     ("bonus", "boss", None)]
    bad = [
        (dict(kind="bonus", points=6), InvalidInput, "between 0 and 5"),
        (dict(kind="bonus"), InvalidInput, "between 0 and 5"),
        (dict(kind="incident_from_overdue", points=3), InvalidInput, "model's points"),
        (dict(kind="gift"), InvalidInput, "unknown adjustment"),
        (dict(kind="bonus", points=2, reason="ok"), InvalidInput, "must say why"),
        (dict(kind="bonus", points=2, by_role="unit_officer"), Forbidden, "admin"),
        (dict(kind="bonus", points=2, year=2030), InvalidInput, "year must be"),
        (dict(kind="bonus", points=2, unit_code="NOPE"), NotFound, "NOPE"),
    ]
    for override, error, message in bad:
        args = dict(unit_code="STC", year=2025, by="boss", by_role="admin", reason="a reason long enough", now=NOW)
        with pytest.raises(error, match=message), db.transaction() as s:
            review.add_adjustment(s, **(args | override))
    with pytest.raises(Conflict), db.transaction() as s:
        review.revoke_adjustment(s, adjustment_id=late.id, by="boss", by_role="admin", now=NOW)


def test_the_cached_ranking_is_reused_until_its_inputs_change(db, province):
    first = ranked(db)
    hits = ranking.RANKINGS.hits
    assert ranked(db) == first and ranking.RANKINGS.hits == hits + 1
    with db.transaction() as s:  # a late unit gets its year frozen: a new input, a new ranking
        unit = test_ranking.units.create(s, data=test_ranking.UnitCreate(code="XC", name="Xã Cát", kind="commune",
                                                                          parent_code="HN"))
        snapshots(s, unit.id, 2025, 12, 99)
    assert ranked(db)["XC"] == (1, 99.0, "A", None) and ranking.RANKINGS.hits == hits + 1
    # a revocation alone (no new row, the same revocation time as an earlier one) is seen too
    with db.transaction() as s:
        one = review.add_adjustment(s, unit_code="XC", year=2025, kind="incident_unreported", by="boss",
                                    by_role="admin", reason="an incident reported after 9 days", now=NOW)
        two = review.add_adjustment(s, unit_code="XB", year=2025, kind="incident_unreported", by="boss",
                                    by_role="admin", reason="an incident reported after 12 days", now=NOW)
        review.revoke_adjustment(s, adjustment_id=one.id, by="boss", by_role="admin", now=NOW)
    assert ranked(db)["XC"][1] == 99.0 and ranked(db)["XB"][3] == "incident_unreported"
    with db.transaction() as s:
        review.revoke_adjustment(s, adjustment_id=two.id, by="boss", by_role="admin", now=NOW)
    assert ranked(db)["XB"][3] is None


def test_working_days_skip_weekends():
    friday = date(2026, 11, 20)
    assert review.working_days_after(friday, 1) == date(2026, 11, 23)
    assert review.working_days_after(friday, 10) == date(2026, 12, 4)


def test_appeal_within_the_window_corrects_the_value_at_use_and_keeps_the_snapshot(db, province):
    stc, xa = province["STC"], province["XA"]
    # the fixture froze November 2026 on the 15th (a Sunday): the window runs ten working days, to 27 November
    officer = Scope.units(frozenset({stc}))
    args = dict(unit_code="STC", period="2026-11", indicator="A1", by="stc-officer", by_role="unit_officer",
                reason="two servers were decommissioned in October but still counted")
    with db.transaction() as s:
        appeal = review.file_appeal(s, scope=officer, now=NOW, **args)
        assert review.appeal_deadline(s, period="2026-11", unit_id=stc) == date(2026, 11, 27)
    with pytest.raises(Conflict, match="already waiting"), db.transaction() as s:
        review.file_appeal(s, scope=officer, now=NOW, **args)
    with pytest.raises(InvalidInput, match="closed on 2026-11-27"), db.transaction() as s:
        review.file_appeal(s, scope=officer, now=datetime(2026, 11, 28, 3, tzinfo=UTC), **(args | {"indicator": "A2"}))
    with pytest.raises(NotFound), db.transaction() as s:  # another unit's officer
        review.file_appeal(s, scope=Scope.units(frozenset({xa})), now=NOW, **args)
    with pytest.raises(NotFound, match="no frozen snapshot of 2026-12"), db.transaction() as s:
        review.file_appeal(s, scope=officer, now=NOW, **(args | {"period": "2026-12"}))
    with pytest.raises(Forbidden), db.transaction() as s:
        review.decide_appeal(s, appeal_id=appeal.id, accept=True, corrected_value=95, decision="servers retired",
                             by="stc-officer", by_role="unit_officer", now=NOW)
    with pytest.raises(InvalidInput, match="corrected value"), db.transaction() as s:
        review.decide_appeal(s, appeal_id=appeal.id, accept=True, decision="servers were retired", by="boss",
                             by_role="admin", now=NOW)
    before = ranked(db, 2026)["STC"][1]
    with db.transaction() as s:
        review.decide_appeal(s, appeal_id=appeal.id, accept=True, corrected_value=100,
                             decision="decommissioning records checked", by="boss", by_role="admin", now=NOW)
    after = ranked(db, 2026)["STC"][1]
    assert after > before  # A1 100 instead of 80 for November (weight 8, one of 12 months)
    with db.session() as s:
        original = s.scalars(select(ScoreSnapshot.value).where(
            ScoreSnapshot.period == "2026-11", ScoreSnapshot.unit_id == stc, ScoreSnapshot.indicator == "A1")).one()
        [logged] = review.appeals(s, scope=officer, period="2026-11")
    assert original == 80 and logged.status == "accepted" and logged.corrected_value == 100
    assert logged.decided_by == "boss" and logged.decision == "decommissioning records checked"
    with pytest.raises(Conflict, match="accepted already"), db.transaction() as s:
        review.decide_appeal(s, appeal_id=appeal.id, accept=False, decision="changed my mind here", by="boss",
                             by_role="admin", now=NOW)


def test_publication(db, province):
    with db.transaction() as s:
        review.publish(s, year=2025, by="boss", by_role="admin", now=NOW)
    with pytest.raises(Conflict), db.transaction() as s:
        review.publish(s, year=2025, by="boss", by_role="admin", now=NOW)
    with pytest.raises(NotFound, match="no frozen snapshots for 2019"), db.transaction() as s:
        review.publish(s, year=2019, by="boss", by_role="admin", now=NOW)
    with pytest.raises(Forbidden), db.transaction() as s:
        review.publish(s, year=2026, by="auditor1", by_role="auditor", now=NOW)
    with db.session() as s:
        assert review.published_years(s) == [2025]
    with db.transaction() as s:
        review.unpublish(s, year=2025, by_role="admin")
    with db.session() as s:
        assert review.published_years(s) == []


def test_the_api_for_adjustments_appeals_and_publication(client, db):
    h.add_user(db, "boss", "admin")
    h.add_user(db, "d1", "unit_officer", unit="D1")
    with db.transaction() as s:
        from collector.units import service as units

        d1 = units.get_by_code(s, code="D1").id
        snapshots(s, d1, 2025, 12, 77)
    boss = {"Authorization": f"Bearer {h.api_token(db, 'boss')}"}
    officer = {"Authorization": f"Bearer {h.api_token(db, 'd1')}"}
    made = client.post("/api/v1/scores/adjustments", headers=boss, json={
        "unit": "D1", "year": 2025, "kind": "bonus", "points": 3, "reason": "drill with the national CERT"})
    assert made.status_code == 201, made.text
    denied = client.post("/api/v1/scores/adjustments", headers=officer, json={
        "unit": "D1", "year": 2025, "kind": "bonus", "points": 3, "reason": "we would like more points"})
    assert denied.status_code == 403
    listed = client.get("/api/v1/scores/adjustments/2025", headers=officer).json()["items"]
    assert [a["points"] for a in listed] == [3]
    late = client.post("/api/v1/scores/appeals", headers=officer, json={
        "unit": "D1", "period": "2025-12", "indicator": "A1", "reason": "the December snapshot missed two hosts"})
    assert late.status_code == 422 and "closed on" in late.json()["detail"]
    assert client.post("/api/v1/scores/ranking/2025/publish", headers=officer).status_code == 403
    assert client.post("/api/v1/scores/ranking/2025/publish", headers=boss).status_code == 201
    assert client.delete("/api/v1/scores/ranking/2025/publish", headers=boss).status_code == 204
