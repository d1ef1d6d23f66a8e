"""The audit log: logins, every change people make (who, when, from where, before/after), read and
exported by admins and auditors only; agents' and the pipeline's writes are not people's changes."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from collector.audit.models import AuditEntry
from collector.units import service as units
from collector.users import service as users
from tests.console import helpers as h


def entries(db, **where) -> list[AuditEntry]:
    with db.session() as s:
        rows = list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    return [r for r in rows if all(getattr(r, k) == v for k, v in where.items())]


def bearer(db, name: str) -> dict[str, str]:
    with db.transaction() as s:
        token = users.create_api_token(s, username=name, expires_in=None)
    return {"Authorization": f"Bearer {token}"}


def test_logins_failures_and_logouts_are_logged_with_the_source_address(client, db):
    assert h.login(client, "officer1", "wrong password!!").status_code == 401
    h.logged_in(client, "officer1")
    page = client.get("/hosts")
    client.post("/logout", data={"csrf_token": h.csrf_token(page.text)})
    got = [(e.action, e.actor, e.role, e.via, e.source_ip) for e in entries(db, target_type="users")]
    assert got == [("login_failed", "officer1", "unit_officer", "console", "testclient"),
                   ("login", "officer1", "unit_officer", "console", "testclient"),
                   ("logout", "officer1", "unit_officer", "console", "testclient")]
    assert all(e.unit_id is not None for e in entries(db, target_type="users"))


def test_a_change_through_the_api_is_logged_with_before_and_after(client, db):
    officer = bearer(db, "officer1")
    made = client.post("/api/v1/incidents", headers=officer, json={
        "unit": "D1", "title": "Defacement of the portal", "severity": "serious",
        "detected_at": "2026-11-01T08:00:00+07:00"})
    assert made.status_code == 201, made.text
    incident_id = made.json()["id"]
    client.post(f"/api/v1/incidents/{incident_id}/reported", headers=officer,
                json={"stage": "initial", "at": "2026-11-01T20:00:00+07:00"})
    created, updated = entries(db, target_type="incidents")
    assert (created.action, created.actor, created.via, created.target_id) == ("create", "officer1", "api",
                                                                               str(incident_id))
    assert created.before is None and created.after["title"] == "Defacement of the portal"
    with db.session() as s:
        assert created.unit_id == units.get_by_code(s, code="D1").id
    assert updated.action == "update" and updated.before == {"initial_report_at": None}
    assert updated.after == {"initial_report_at": "2026-11-01T13:00:00+00:00"}


def test_secrets_never_reach_the_log_and_reads_write_nothing(client, db, world):
    admin = bearer(db, "admin")
    before = len(entries(db))
    for path in ("/api/v1/hosts", "/api/v1/alerts", "/api/v1/incidents"):
        assert client.get(path, headers=admin).status_code == 200
    assert len(entries(db)) == before  # reading is not a change
    h.add_user(db, "auditor", "auditor")
    with db.transaction() as s:  # a token made by a command acting as the admin
        from khien.cli_common import acting_user
        acting_user(s, "admin")
        users.create_api_token(s, username="auditor", expires_in=None)
    token_rows = entries(db, target_type="api_tokens")
    assert token_rows and all(e.after["token_hash"] == "[redacted]" and e.via == "cli" for e in token_rows)


def test_only_admins_and_auditors_read_and_export_it(client, db):
    h.add_user(db, "auditor", "auditor")
    h.add_user(db, "analyst", "analyst")
    # a hostile value that would run as a formula in a spreadsheet
    with db.transaction() as s:
        from khien.cli_common import acting_user
        acting_user(s, "admin")
        unit = units.get_by_code(s, code="D2")
        unit.name = "=HYPERLINK(\"http://evil\")"
        s.add(unit)
    for name in ("officer1", "analyst"):
        assert client.get("/api/v1/audit", headers=bearer(db, name)).status_code == 403
        assert client.get("/api/v1/audit/export", headers=bearer(db, name)).status_code == 403
    auditor = bearer(db, "auditor")
    listed = client.get("/api/v1/audit", headers=auditor, params={"target_type": "units"})
    assert listed.status_code == 200
    [change] = listed.json()["items"]
    assert change["actor"] == "admin" and change["after"] == {"name": "=HYPERLINK(\"http://evil\")"}
    exported = client.get("/api/v1/audit/export", headers=auditor)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["id", "at", "actor"]
    unit_row = next(r for r in rows if r[7] == "units")
    assert unit_row[11].startswith("{")  # JSON, and the formula sits inside it, not at the cell's start
    assert all(not cell.startswith("=") for r in rows for cell in r)
    # exporting is itself logged
    assert [e.actor for e in entries(db, action="export")] == ["auditor"]


def test_writes_without_a_person_are_not_in_it(client, db, world):
    """A session without an actor (ingest, detection, matching, migrations) is machine work."""
    before = len(entries(db))
    with db.transaction() as s:
        unit = units.get_by_code(s, code="D1")
        unit.name = "Renamed by a job"
        s.add(unit)
    assert len(entries(db)) == before
