"""The scores API over HTTP: stored day, explanation with the evidence behind lost points, history,
snapshots and the ranking — each scoped to the caller's units."""

from __future__ import annotations

from datetime import timedelta

import pytest

from collector.scoring import explain as explaining
from collector.scoring import service as scoring
from tests.collector import helpers as h
from tests.collector.test_scoring import NOW, World, populate

D = "2026-10-14"


@pytest.fixture
def world(client, db) -> World:  # the client fixture seeds the units
    w = populate(World(db, seed=False))
    with db.transaction() as s:
        for back in range(3):
            scoring.store_day(s, day=scoring.date.fromisoformat(D) - timedelta(days=back), now=NOW)
        scoring.freeze_month(s, period="2026-10", now=NOW)
    for name, role, unit in (("boss", "admin", None), ("d1", "unit_officer", "D1"), ("d2", "unit_officer", "D2")):
        h.add_user(db, name, role, unit=unit)
    return w


def get(client, db, user: str, url: str, status: int = 200, **params):
    resp = client.get(url, params=params, headers={"Authorization": f"Bearer {h.api_token(db, user)}"})
    assert resp.status_code == status, resp.text
    return resp.json()


def test_stored_day_and_scope(client, db, world):
    items = get(client, db, "boss", "/api/v1/scores", day=D)["items"]
    assert [i["unit"] for i in items] == ["D1", "D2", "P"]
    d1 = items[0]
    assert d1["indicators"]["A1"] == pytest.approx(56.25) and d1["score"] > d1["score_without_exceptions"]
    assert [i["unit"] for i in get(client, db, "d2", "/api/v1/scores", day=D)["items"]] == ["D2"]
    for url in ("/api/v1/scores", "/api/v1/scores/D1/explain", "/api/v1/scores/ranking/2026"):
        assert client.get(url).status_code == 401
    missing = get(client, db, "boss", "/api/v1/scores", 404, day="2026-09-01")
    assert "no scores stored for 2026-09-01" in missing["detail"]
    assert "YYYY-MM-DD" in get(client, db, "boss", "/api/v1/scores", 422, day="14/10/2026")["detail"]


def test_explanation_names_the_hosts_findings_and_checks_behind_lost_points(client, db, world):
    body = get(client, db, "d1", "/api/v1/scores/D1/explain", day=D)
    a1, a2, a3 = (body["indicators"][i] for i in ("A1", "A2", "A3"))
    assert a1["value"] == pytest.approx(56.25) and a1["points_lost"] == pytest.approx(8 * 0.4375, abs=0.01)
    losing = {p.get("hostname") or p.get("address") for p in a1["losing"]}
    assert losing == {"h2", "10.0.0.9"}  # h2 reported on 20 of 30 days; the unmanaged address
    h2 = next(p for p in a1["losing"] if p.get("hostname") == "h2")
    assert h2["detail"]["days"] == 20 and h2["detail"]["expected"] == 30
    overdue = {f["rule"]: f for f in a2["overdue_findings"]}
    assert overdue["CVE-2026-11111"]["hostname"] == "h1" and overdue["CVE-2026-11111"]["overdue_days"] > 20
    assert a2["value_without_exceptions"] == pytest.approx(6.25) and a2["value"] == pytest.approx(68.75)
    assert {(c["hostname"], c["check_id"], c["critical"]) for c in a3["failed_checks"]} >= {
        ("h2", "ssh_lnx_permit_empty_passwords_disabled", True), ("h1", "f1", False)}
    assert body["score"] == pytest.approx(sum(i["points"] for i in body["indicators"].values()), abs=0.05)
    # the finished day's explanation is now cached: the same answer again, without computing it again
    hits = explaining.EXPLANATIONS.hits
    assert get(client, db, "boss", "/api/v1/scores/D1/explain", day=D) == body
    assert explaining.EXPLANATIONS.hits == hits + 1
    # another unit's officer gets the same answer as for a unit that does not exist: the scope is checked
    # before the cache, so the cached D1 entry is never served to them
    assert get(client, db, "d2", "/api/v1/scores/D1/explain", 404, day=D)["detail"] == \
        get(client, db, "d2", "/api/v1/scores/NOPE/explain", 404, day=D)["detail"].replace("NOPE", "D1")


def test_history_snapshot_and_ranking(client, db, world):
    hist = get(client, db, "d1", "/api/v1/scores/D1/history", start="2026-10-01", end=D)
    assert [d["day"] for d in hist["days"]] == ["2026-10-12", "2026-10-13", "2026-10-14"]
    assert get(client, db, "d2", "/api/v1/scores/D1/history", 404, end=D)
    snap = get(client, db, "d2", "/api/v1/scores/snapshots/2026-10")["items"]
    assert {r["unit_id"] for r in snap} == {world.d2} and len(snap) == 11
    ranking = get(client, db, "boss", "/api/v1/scores/ranking/2026")
    assert ranking["provisional"] is True and {u["unit"] for u in ranking["units"]} == {"D1", "D2"}
    assert "h1" not in str(ranking) and "CVE" not in str(ranking)
    assert {u["unit"] for u in get(client, db, "d2", "/api/v1/scores/ranking/2026")["units"]} == {"D2"}
    assert "no frozen snapshots for 2020" in get(client, db, "boss", "/api/v1/scores/ranking/2020", 404)["detail"]


def test_goal_progress_for_the_province_and_a_unit(client, db, world):
    body = get(client, db, "boss", "/api/v1/scores/goals/progress", day=D)
    goals = {g["id"]: g for g in body["goals"]}
    assert body["scope"] == "province" and set(goals) >= {"servers_monitored", "overdue_p0_critical"}
    monitored = goals["servers_monitored"]
    # A1 stored for three days: D1 56.25 (h2 reported on too few days), D2 0 (h4 never reported)
    assert monitored["current"] == pytest.approx((56.25 + 0) / 2) and monitored["points"] == 3
    assert monitored["met"] is False and monitored["target"] == 100
    overdue = goals["overdue_p0_critical"]
    assert overdue["current"] == 2 and overdue["met"] is False  # D1's overdue P1 and D2's overdue P0
    own = {g["id"]: g for g in get(client, db, "d1", "/api/v1/scores/goals/progress", day=D, unit="D1")["goals"]}
    assert own["servers_monitored"]["current"] == pytest.approx(56.25) and own["overdue_p0_critical"]["current"] == 1
    get(client, db, "d2", "/api/v1/scores/goals/progress", 404, day=D, unit="D1")
    # a unit officer's province view covers only the units it may see
    mine = {g["id"]: g for g in get(client, db, "d2", "/api/v1/scores/goals/progress", day=D)["goals"]}
    assert mine["overdue_p0_critical"]["current"] == 1


def test_a_parent_unit_sees_the_roll_up_of_its_subtree(client, db, world):
    items = {i["unit"]: i for i in get(client, db, "boss", "/api/v1/scores", day=D)["items"]}
    province = items["P"]
    assert province["indicators"]["A1"] is None and "rollup" not in items["D1"]
    rolled = province["rollup"]
    assert rolled["units"] == 3
    # A1 pooled over every host of the subtree: D1 4.5 of 8, D2 0 of 2.25 (h4 never reported)
    assert rolled["indicators"]["A1"] == pytest.approx(100 * 4.5 / 10.25, abs=1e-3)
    # A8 from the pooled alert counts (only D1 has alerts: 3 of 4 handled)
    assert rolled["indicators"]["A8"] == pytest.approx(87.5)
    assert rolled["indicators"]["M1"] == pytest.approx(60)  # the mean of the units that attested
    assert rolled["score"] > province["score"]
