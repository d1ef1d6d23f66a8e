"""Incidents: recorded and reported through the API, scoped by unit, and counted in A8 when serious."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.errors import Forbidden, InvalidInput, NotFound
from collector.incidents import service as incidents
from collector.incidents.models import IncidentCreate
from collector.scope import Scope
from collector.scoring import service as scoring
from collector.scoring.indicators import end_of_day
from tests.collector import helpers as h
from tests.collector.test_scoring import NOW, D, World, populate

ALL = Scope.everything()


def create(db, *, unit="D1", severity="serious", detected, initial=None, full=None, scope=ALL, role="admin",
           now=NOW):
    with db.transaction() as s:
        return incidents.record(s, scope=scope, by="boss", by_role=role, now=now, data=IncidentCreate(
            unit=unit, title="Web defacement of the portal", severity=severity, detected_at=detected,
            initial_report_at=initial, full_report_at=full))


def test_a8_counts_serious_incidents_reported_on_time(db):
    world = populate(World(db))
    end = end_of_day(D)
    day = timedelta(days=1)
    recorded = end - timedelta(hours=1)  # on record before the end of D (one recorded after is below)
    create(db, detected=end - 10 * day, initial=end - 10 * day + timedelta(hours=5),
           full=end - 10 * day + timedelta(hours=60), now=recorded)  # on time
    create(db, detected=end - 8 * day, initial=end - 8 * day + timedelta(hours=30),
           full=end - 8 * day + timedelta(hours=40), now=recorded)  # initial notice after 30 h: late
    create(db, detected=end - 5 * day, now=recorded)  # never reported, both deadlines passed: late
    create(db, detected=end - timedelta(hours=2), now=recorded)  # nothing due yet: on time so far
    create(db, severity="normal", detected=end - 3 * day, now=recorded)  # not reportable: not counted
    create(db, detected=end + day)  # after D: not in the window
    create(db, detected=end - 6 * day)  # recorded only after D: not what D's value knew
    with db.session() as s:
        a8 = scoring.compute(s, day=D)[world.d1].measures["A8"]
    # alerts 3/4 handled (0.5 × 0.75) + incidents 2 of 4 on time (0.5 × 0.5)
    assert a8.value == pytest.approx(100 * (0.5 * 0.75 + 0.5 * 0.5))
    assert ("incidents", 4.0, 0.5, {"serious": 4, "on_time": 2}) in a8.parts


def test_bad_input_and_scope(db):
    h.seed_units(db)
    t = datetime(2026, 10, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="future"):
        create(db, detected=NOW + timedelta(hours=1))
    with pytest.raises(InvalidInput, match="between detection and now"):
        create(db, detected=t, initial=t - timedelta(hours=1))
    with pytest.raises(InvalidInput, match="before the initial notice"):
        create(db, detected=t, initial=t + timedelta(hours=5), full=t + timedelta(hours=1))
    with pytest.raises(InvalidInput, match="severity"):
        create(db, detected=t, severity="critical")
    with pytest.raises(Forbidden):
        create(db, detected=t, role="auditor")
    with db.session() as s:
        from collector.units import service as units

        d2 = units.get_by_code(s, code="D2").id
    with pytest.raises(NotFound):
        create(db, detected=t, scope=Scope.units(frozenset({d2})))  # D1 is not the officer's
    row = create(db, detected=t)
    with db.transaction() as s:
        incidents.reported(s, scope=ALL, incident_id=row.id, stage="initial", at=t + timedelta(hours=3),
                           by_role="unit_officer", now=NOW)
    with pytest.raises(NotFound), db.transaction() as s:
        incidents.reported(s, scope=Scope.units(frozenset({d2})), incident_id=row.id, stage="full",
                           at=t + timedelta(hours=9), by_role="unit_officer", now=NOW)


def test_the_incidents_api(client, db):
    h.add_user(db, "d1", "unit_officer", unit="D1")
    h.add_user(db, "d2", "unit_officer", unit="D2")
    d1 = {"Authorization": f"Bearer {h.api_token(db, 'd1')}"}
    d2 = {"Authorization": f"Bearer {h.api_token(db, 'd2')}"}
    body = {"unit": "D1", "title": "Ransomware on the file server", "severity": "serious",
            "detected_at": "2026-11-01T08:00:00+07:00"}
    made = client.post("/api/v1/incidents", headers=d1, json=body)
    assert made.status_code == 201, made.text
    naive = client.post("/api/v1/incidents", headers=d1, json=body | {"detected_at": "2026-11-01T08:00:00"})
    assert naive.status_code == 422  # a time without its zone would move the deadlines
    assert client.post("/api/v1/incidents", headers=d2, json=body).status_code == 404
    reported = client.post(f"/api/v1/incidents/{made.json()['id']}/reported", headers=d1,
                           json={"stage": "initial", "at": "2026-11-01T20:00:00+07:00"})
    assert reported.status_code == 200
    assert datetime.fromisoformat(reported.json()["initial_report_at"]) == datetime(2026, 11, 1, 13, tzinfo=UTC)
    assert [i["title"] for i in client.get("/api/v1/incidents", headers=d1).json()["items"]] == [body["title"]]
    assert client.get("/api/v1/incidents", headers=d2).json()["items"] == []
