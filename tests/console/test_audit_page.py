"""The audit log page and its CSV: administrators and auditors only; filters, keyset paging, before/after
lines, hostile values shown as text."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from collector.access import system_actor
from collector.audit import service as audit
from collector.types import utcnow
from collector.units import service as units
from console import i18n
from tests.console import helpers as h
from tests.console.test_audit_log import entries


@pytest.fixture
def staff(db, world):
    h.add_user(db, "analyst1", "analyst")
    h.add_user(db, "auditor1", "auditor")


def rename_unit(db, code: str, name: str) -> None:
    """A change the audit hook logs (as the admin, through the command-line path)."""
    with db.transaction() as s:
        from khien.cli_common import acting_user
        acting_user(s, "admin")
        unit = units.get_by_code(s, code=code)
        unit.name = name
        s.add(unit)


def test_only_admins_and_auditors_see_the_page_and_the_csv(client, staff):
    for name, status in (("officer1", 403), ("analyst1", 403), ("auditor1", 200), ("admin", 200)):
        client.cookies.clear()
        h.logged_in(client, name)
        assert client.get("/audit").status_code == status, name
        assert client.get("/audit.csv").status_code == status, name


def test_before_and_after_are_shown_as_escaped_lines_and_hostile_names_stay_text(client, db, staff):
    rename_unit(db, "D2", '<img src=x onerror=alert(3)>')
    assert h.login(client, h.XSS, "not the password at all").status_code == 401  # logged with that name
    h.logged_in(client, "auditor1")
    page = client.get("/audit").text
    assert "<img src=x" not in page and h.XSS not in page
    assert "&lt;img src=x onerror=alert(3)&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Sở Tài chính</span> → <span class=\"new\">&lt;img" in page  # name: old → new


def test_filters_by_who_action_table_unit_and_dates(client, db, staff):
    rename_unit(db, "D1", "Renamed D1")
    rename_unit(db, "D2", "Renamed D2")
    h.login(client, "officer1", "wrong password guess")
    h.logged_in(client, "admin")
    by_table = client.get("/audit", params={"table": "units"}).text
    failed_cell = '<td class="mono">login_failed</td>'
    assert "Renamed D1" in by_table and "Renamed D2" in by_table and failed_cell not in by_table
    by_unit = client.get("/audit", params={"table": "units", "unit": "D2"}).text
    assert "Renamed D2" in by_unit and "Renamed D1" not in by_unit
    by_who = client.get("/audit", params={"who": "officer1"}).text
    assert failed_cell in by_who and "Renamed" not in by_who
    by_action = client.get("/audit", params={"action": "login"}).text
    assert '<td class="mono">login</td>' in by_action and failed_cell not in by_action
    # Dates are Vietnam days: today's entries are in today's range and not in yesterday's.
    today = i18n.to_vietnam_time(utcnow()).date()
    assert "Renamed D1" in client.get("/audit", params={"since": today.isoformat(), "until": today.isoformat()}).text
    yesterday = (today - timedelta(days=1)).isoformat()
    assert "Renamed D1" not in client.get("/audit", params={"until": yesterday}).text
    bad = client.get("/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text
    assert client.get("/audit", params={"unit": "NOPE"}).status_code == 422


def test_older_link_pages_by_id(client, db, staff):
    with db.transaction() as s:
        for i in range(105):
            audit.log(s, actor=system_actor("pager"), action=f"step{i:03d}", target_type="test")
    h.logged_in(client, "admin")
    first = client.get("/audit", params={"who": "pager"}).text
    assert "step104" in first and "step005" in first and "step004" not in first
    newest_ids = sorted(e.id for e in entries(db, actor="pager"))
    older = f'/audit?who=pager&amp;before_id={newest_ids[5]}'
    assert older in first
    second = client.get("/audit", params={"who": "pager", "before_id": newest_ids[5]}).text
    assert "step004" in second and "step000" in second and "step005" not in second
    assert 'rel="next"' in first and 'rel="next"' not in second  # the last page has no older link


def test_csv_is_filtered_named_by_the_vietnam_date_and_logged(client, db, staff):
    rename_unit(db, "D2", "=HYPERLINK(\"http://evil\")")
    h.logged_in(client, "auditor1")
    exported = client.get("/audit.csv", params={"table": "units"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    today = i18n.to_vietnam_time(utcnow()).strftime("%Y%m%d")
    assert exported.headers["content-disposition"] == f'attachment; filename="khien-audit-{today}.csv"'
    assert exported.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["id", "at", "actor"]
    assert {r[7] for r in rows[1:]} == {"units"}
    assert all(not cell.startswith("=") for r in rows for cell in r)
    [logged] = entries(db, action="export")
    assert logged.actor == "auditor1" and logged.after == {"rows": 1, "filters": {"table": "units"}}


def test_logins_show_who_and_from_where(client, staff):
    h.logged_in(client, "auditor1")
    page = client.get("/audit", params={"action": "login"}).text
    assert '<span class="mono">auditor1</span>' in page and '<td class="mono">testclient</td>' in page
