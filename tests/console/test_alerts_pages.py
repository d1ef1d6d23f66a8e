"""Alert triage over HTTP: the JSON API (roles, scope, workflow, suppressions) and the console pages
(queue, alert page, forms with CSRF, hostile agent data rendered as text)."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from sqlmodel import select

from collector.audit.models import AuditEntry
from collector.types import utcnow
from tests.collector.helpers import api_token
from tests.console import alerts_helpers as ah
from tests.console import helpers as h


@pytest.fixture
def people(db, world):
    ah.add_people(db)
    return world


def bearer(db, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(db, name)}"}


# ---- JSON API ------------------------------------------------------------------------------------------

def test_api_workflow_assignment_comments_and_counts(client, db, people):
    alert_id = ah.add_alert(db, host_id=people.web01)
    analyst = bearer(db, "analyst1")
    listed = client.get("/api/v1/alerts", headers=analyst).json()
    assert [a["id"] for a in listed["items"]] == [alert_id] and listed["next_before_id"] is None
    moved = client.post(f"/api/v1/alerts/{alert_id}/status", headers=analyst, json={"status": "acknowledged"})
    assert moved.status_code == 200 and moved.json()["acknowledged_by"] == "analyst1"
    refused = client.post(f"/api/v1/alerts/{alert_id}/status", headers=analyst, json={"status": "new"})
    assert refused.status_code == 409
    assert client.post(f"/api/v1/alerts/{alert_id}/assign", headers=analyst,
                       json={"assignee": "admin"}).json()["assignee"] == "admin"
    assert client.post(f"/api/v1/alerts/{alert_id}/comments", headers=analyst,
                       json={"body": "checked the source"}).status_code == 201
    assert [c["body"] for c in client.get(f"/api/v1/alerts/{alert_id}/comments", headers=analyst).json()] == [
        "checked the source"]
    counts = client.get("/api/v1/alerts/counts", headers=analyst, params={"unit": "D1"}).json()
    assert counts["high"] == 1 and counts["suppressed"] == 0
    bulk = client.post("/api/v1/alerts/bulk", headers=analyst, json={"alert_ids": [alert_id], "status": "resolved"})
    assert bulk.status_code == 200 and bulk.json()["changed"] == 1
    assert client.get(f"/api/v1/alerts/{alert_id}", headers=analyst).json()["status"] == "resolved"


def test_api_roles_and_scope(client, db, people):
    alert_id = ah.add_alert(db, host_id=people.web01)  # D1
    for who in ("officer1", "auditor1"):
        headers = bearer(db, who)
        assert client.get(f"/api/v1/alerts/{alert_id}", headers=headers).status_code == 200
        assert client.post(f"/api/v1/alerts/{alert_id}/status", headers=headers,
                           json={"status": "acknowledged"}).status_code == 403
        assert client.post("/api/v1/alerts/bulk", headers=headers,
                           json={"alert_ids": [alert_id], "status": "acknowledged"}).status_code == 403
    officer2 = bearer(db, "officer2")
    assert client.get(f"/api/v1/alerts/{alert_id}", headers=officer2).status_code == 404
    assert client.post(f"/api/v1/alerts/{alert_id}/comments", headers=officer2, json={"body": "x"}).status_code == 404
    assert client.get("/api/v1/alerts", headers=officer2).json()["items"] == []
    assert client.get("/api/v1/alerts").status_code == 401


def test_api_suppressions(client, db, people):
    analyst = bearer(db, "analyst1")
    expires = (utcnow() + timedelta(days=2)).isoformat()
    made = client.post("/api/v1/alerts/suppressions", headers=analyst, json={
        "rule_id": "ssh_lnx_brute_force", "kind": "snooze", "reason": "pen test this week", "unit": "D1",
        "expires_at": expires})
    assert made.status_code == 201, made.text
    sup = made.json()
    held = ah.add_alert(db, host_id=people.web01)
    assert client.get(f"/api/v1/alerts/{held}", headers=analyst).json()["status"] == "suppressed"
    assert client.get("/api/v1/alerts/counts", headers=analyst).json()["suppressed"] == 1
    assert [s["hits"] for s in client.get("/api/v1/alerts/suppressions", headers=analyst).json()] == [1]
    assert client.get("/api/v1/alerts/suppressions", headers=bearer(db, "officer2")).json() == []
    officer = bearer(db, "officer1")
    assert client.post(f"/api/v1/alerts/suppressions/{sup['id']}/expire", headers=officer).status_code == 403
    assert client.post(f"/api/v1/alerts/suppressions/{sup['id']}/expire", headers=analyst).status_code == 200
    assert client.post(f"/api/v1/alerts/suppressions/{sup['id']}/expire", headers=analyst).status_code == 409
    assert client.post("/api/v1/alerts/suppressions", headers=analyst, json={
        "rule_id": "ssh_lnx_brute_force", "reason": "", "unit": "D1", "expires_at": expires}).status_code == 422


# ---- console pages -------------------------------------------------------------------------------------

def test_queue_and_alert_page_render_hostile_agent_data_as_text(admin, db, people):
    alert_id = ah.add_alert(db, host_id=people.hostile, group={"user": ah.HOSTILE_GROUP}, raw=ah.RAW_LINE)
    queue_page = admin.get("/alerts")
    assert queue_page.status_code == 200
    text = queue_page.text
    assert h.XSS not in text and ah.HOSTILE_GROUP not in text
    assert html.escape(h.XSS) in text and "&lt;img src=x onerror=alert(3)&gt;" in text
    assert 'href="/static/alerts.css"' in queue_page.text and "style=" not in queue_page.text
    page = admin.get(f"/alerts/{alert_id}")
    assert page.status_code == 200
    assert h.XSS not in page.text and "<script>alert(4)" not in page.text and ah.HOSTILE_GROUP not in page.text
    assert "Failed password for &lt;script&gt;alert(4)&lt;/script&gt;" in page.text  # the raw line, as text
    assert "Có ít nhất 8 lần đăng nhập SSH thất bại" in page.text  # the rule's description in Vietnamese
    assert "Tỉnh mẫu" not in page.text and "Sở Khoa học và Công nghệ" in page.text  # host context: its unit
    english = admin.get(f"/alerts/{alert_id}?lang=en")
    assert "At least 8 failed SSH logins" in english.text and "Có ít nhất 8" not in english.text


def test_console_workflow_through_forms(admin, db, people):
    alert_id = ah.add_alert(db, host_id=people.web01)
    token = h.csrf_token(admin.get(f"/alerts/{alert_id}").text)
    assert admin.post(f"/alerts/{alert_id}/status", data={"status": "acknowledged"},
                      follow_redirects=False).status_code == 403  # no CSRF token
    done = admin.post(f"/alerts/{alert_id}/status", follow_redirects=False,
                      data={"csrf_token": token, "status": "acknowledged", "comment": "on it"})
    assert done.status_code == 303 and done.headers["location"] == f"/alerts/{alert_id}"
    refused = admin.post(f"/alerts/{alert_id}/status", data={"csrf_token": token, "status": "new"})
    assert refused.status_code == 409 and "Không được phép thay đổi này" in refused.text
    assert admin.post(f"/alerts/{alert_id}/assign", follow_redirects=False,
                      data={"csrf_token": token, "assignee": "analyst1"}).status_code == 303
    assert admin.post(f"/alerts/{alert_id}/comments", follow_redirects=False,
                      data={"csrf_token": token, "body": "<b>bold</b> claim"}).status_code == 303
    assert admin.post(f"/alerts/{alert_id}/suppress", follow_redirects=False, data={
        "csrf_token": token, "kind": "snooze", "scope": "host", "days": "7",
        "reason": "planned scan"}).status_code == 303
    page = admin.get(f"/alerts/{alert_id}").text
    assert "Đã tiếp nhận" in page and "analyst1" in page and "&lt;b&gt;bold&lt;/b&gt; claim" in page
    assert "planned scan" in page and "on it" in page
    with db.session() as s:
        audited = s.exec(select(AuditEntry).where(AuditEntry.target_type == "alerts",
                                                  AuditEntry.target_id == str(alert_id))).all()
    assert {e.via for e in audited} == {"console"} and len(audited) == 2  # status, then assignment


def test_bulk_form_is_all_or_nothing(admin, db, people):
    a, b = ah.add_alert(db, host_id=people.web01, key="a"), ah.add_alert(db, host_id=people.web01, key="b")
    token = h.csrf_token(admin.get("/alerts").text)
    admin.post(f"/alerts/{b}/status", data={"csrf_token": token, "status": "duplicate"})
    refused = admin.post("/alerts/bulk", data={"csrf_token": token, "alert_id": [str(a), str(b)],
                                               "action": "status", "status": "in_progress"})
    assert refused.status_code == 409 and "Không có gì thay đổi" in refused.text
    assert admin.get(f"/api/v1/alerts/{a}").json()["status"] == "new"
    done = admin.post("/alerts/bulk", follow_redirects=False, data={
        "csrf_token": token, "alert_id": [str(a)], "action": "assign", "assignee": "analyst1",
        "back": "/alerts?severity=high"})
    assert done.status_code == 303 and done.headers["location"] == "/alerts?severity=high"
    assert admin.get(f"/api/v1/alerts/{a}").json()["assignee"] == "analyst1"
    evil_back = admin.post("/alerts/bulk", follow_redirects=False, data={
        "csrf_token": token, "alert_id": [str(a)], "action": "assign", "assignee": "", "back": "//evil.example"})
    assert evil_back.headers["location"] == "/alerts"


def test_unit_officer_reads_own_unit_only_and_changes_nothing(officer1, db, people):
    mine = ah.add_alert(db, host_id=people.web01)
    theirs = ah.add_alert(db, host_id=people.db02)
    page = officer1.get(f"/alerts/{mine}")
    assert page.status_code == 200 and f'action="/alerts/{mine}/status"' not in page.text
    assert officer1.get(f"/alerts/{theirs}").status_code == 404
    queue_page = officer1.get("/alerts").text
    assert f'href="/alerts/{mine}"' in queue_page and f'href="/alerts/{theirs}"' not in queue_page
    assert 'name="alert_id"' not in queue_page  # no bulk checkboxes without the permission
    token = h.csrf_token(page.text)
    refused = officer1.post(f"/alerts/{mine}/status", data={"csrf_token": token, "status": "acknowledged"})
    assert refused.status_code == 403
    assert officer1.get(f"/api/v1/alerts/{mine}").json()["status"] == "new"
    assert officer1.post(f"/alerts/{theirs}/comments", data={"csrf_token": token, "body": "x"}).status_code == 404


def test_queue_filters_counts_and_next_page(admin, db, people):
    ah.many_alerts(db, host_id=people.web01, n=55)
    first = admin.get("/alerts?severity=medium")
    assert first.text.count('name="alert_id"') == 50
    next_href = html.unescape(first.text.split('<nav class="pager"')[1].split('href="')[-1].split('"')[0])
    assert "cursor=" in next_href and "severity=medium" in next_href
    second = admin.get(next_href)
    assert second.text.count('name="alert_id"') == 5
    assert admin.get("/alerts?q=%3Cscript%3E").status_code == 200
    bad = admin.get("/alerts?status=bogus")
    assert bad.status_code == 422 and "Một số giá trị không hợp lệ" in bad.text
