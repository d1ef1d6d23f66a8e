"""Remediation and exception pages: views in the viewer's units, the item page's forms (status, comment,
evidence, exception request) with CSRF, roles and scope, the proof of an automatic closure, the
approval flow, and hostile agent data rendered as text."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from collector.audit.models import AuditEntry
from collector.exceptions.models import RiskException
from collector.findings.models import Finding, RemediationEvidence
from collector.types import utcnow
from tests.console import helpers as h
from tests.console import remediation_helpers as rh

HOSTILE_PKG = '"><img src=x onerror=alert(2)>'


@pytest.fixture
def item(db, world) -> int:
    """An overdue P1 on the hostile host of D1, whose package name and title are markup."""
    return rh.add_finding(db, unit="D1", host_id=world.hostile, location=HOSTILE_PKG, title=h.XSS,
                          rule="CVE-2026-31337", finding_class="P1", due_at=utcnow() - timedelta(days=4))


def switch(client, username: str):
    """Log in as someone else, like a fresh browser."""
    client.cookies.clear()
    return h.logged_in(client, username)


def page_token(client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, page.text
    return h.csrf_token(page.text)


def finding(db, fid: int) -> Finding:
    with db.session() as s:
        return s.get(Finding, fid)


def test_views_are_scoped_and_agent_data_is_text(client, db, item):
    switch(client, "officer1")
    page = client.get("/remediation")
    assert page.status_code == 200
    assert f'href="/remediation/{item}"' in page.text
    assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "&lt;img src=x onerror=alert(2)&gt;" in page.text
    for tab in ("due_soon", "age", "by_unit"):
        assert client.get(f"/remediation?tab={tab}").status_code == 200
    assert f'href="/remediation/{item}"' in client.get("/remediation?tab=age&bucket=0-30").text
    assert f'href="/remediation/{item}"' not in client.get("/remediation?tab=due_soon").text
    by_unit = client.get("/remediation?tab=by_unit").text
    assert "D1" in by_unit and "D2 —" not in by_unit
    switch(client, "officer2")
    assert f'href="/remediation/{item}"' not in client.get("/remediation").text
    assert client.get(f"/remediation/{item}").status_code == 404


def test_item_page_status_comment_and_csrf(client, db, item):
    switch(client, "officer1")
    page = client.get(f"/remediation/{item}")
    assert page.status_code == 200 and "<script>alert(1)" not in page.text
    assert f'action="/remediation/{item}/status"' in page.text
    token = h.csrf_token(page.text)
    url = f"/remediation/{item}/status"
    assert client.post(url, data={"status": "in_progress"}, follow_redirects=False).status_code == 403  # no CSRF
    assert finding(db, item).remediation_status == "open"
    resp = client.post(url, data={"status": "in_progress", "assignee": "officer1", "csrf_token": token},
                       follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith(f"/remediation/{item}")
    row = finding(db, item)
    assert (row.remediation_status, row.assignee) == ("in_progress", "officer1")
    refused = client.post(url, data={"status": "fixed", "csrf_token": token}, follow_redirects=False)
    assert refused.status_code == 422 and 'class="card notice-error" role="alert"' in refused.text
    assert finding(db, item).remediation_status == "in_progress"
    resp = client.post(f"/remediation/{item}/comments", data={"body": h.XSS, "csrf_token": token},
                       follow_redirects=False)
    assert resp.status_code == 303
    shown = client.get(f"/remediation/{item}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown and "<script>alert(1)" not in shown
    with db.session() as s:
        entry = s.exec(select(AuditEntry).where(AuditEntry.target_type == "findings",
                                                AuditEntry.target_id == str(item))).one()
    assert (entry.actor, entry.via, entry.after["remediation_status"]) == ("officer1", "console", "in_progress")


def test_auditor_reads_without_forms_and_cannot_post(client, db, item):
    h.add_user(db, "auditor1", "auditor")
    switch(client, "auditor1")
    page = client.get(f"/remediation/{item}")
    assert page.status_code == 200
    assert f'action="/remediation/{item}/status"' not in page.text
    token = h.csrf_token(page.text)  # the logout form carries it
    resp = client.post(f"/remediation/{item}/status", data={"status": "in_progress", "csrf_token": token})
    assert resp.status_code == 403
    assert finding(db, item).remediation_status == "open"


def test_another_units_officer_gets_404_on_every_form(client, db, item):
    switch(client, "officer2")
    token = page_token(client, "/remediation")
    for path, data in (("status", {"status": "in_progress"}), ("comments", {"body": "hi"}),
                       ("exception", {"justification": "x" * 20, "compensating_control": "acl"})):
        assert client.post(f"/remediation/{item}/{path}", data=data | {"csrf_token": token}).status_code == 404
    assert finding(db, item).remediation_status == "open"


def test_evidence_upload_needs_csrf_and_an_allowed_type(client, db, item, settings):
    switch(client, "officer1")
    token = page_token(client, f"/remediation/{item}")
    url = f"/remediation/{item}/evidence"
    assert client.post(url, files={"file": ("t.pdf", rh.PDF, "application/pdf")}).status_code == 403
    bad = client.post(url, data={"csrf_token": token}, files={"file": ("t.pdf", rh.ELF, "application/pdf")})
    assert bad.status_code == 400
    ok = client.post(url, data={"csrf_token": token}, follow_redirects=False,
                     files={"file": ("<b>change ticket</b>.pdf", rh.PDF, "application/pdf")})
    assert ok.status_code == 303
    with db.session() as s:
        [file] = s.exec(select(RemediationEvidence)).all()
    page = client.get(f"/remediation/{item}").text
    assert f'href="/remediation/{item}/evidence/{file.id}"' in page and "<b>change" not in page
    download = client.get(f"/remediation/{item}/evidence/{file.id}")
    assert download.content == rh.PDF and download.headers["content-disposition"].startswith("attachment")
    switch(client, "officer2")
    assert client.get(f"/remediation/{item}/evidence/{file.id}").status_code == 404


def test_a_fixed_finding_shows_what_proved_it(client, db, world):
    fid = rh.add_finding(db, unit="D1", host_id=world.web01, fixed_by="agent")
    switch(client, "officer1")
    page = client.get(f"/remediation/{fid}")
    assert page.status_code == 200
    assert 'id="proof"' in page.text and "installed_version" in page.text and "3.0.13-1~deb12u1" in page.text
    assert f'action="/remediation/{fid}/status"' not in page.text  # only the engine closes it


def test_request_approve_and_reject_through_the_pages(client, db, item):
    switch(client, "officer1")
    token = page_token(client, f"/remediation/{item}")
    form = {"justification": "legacy app, vendor patch next quarter", "compensating_control": "WAF rule 42",
            "expires_in_days": "30", "csrf_token": token}
    too_long = client.post(f"/remediation/{item}/exception", data=form | {"expires_in_days": "91"})
    assert too_long.status_code == 422
    assert client.post(f"/remediation/{item}/exception", data=form, follow_redirects=False).status_code == 303
    assert f'action="/remediation/{item}/exception"' not in client.get(f"/remediation/{item}").text  # pending
    listing = client.get("/exceptions").text
    assert "WAF rule 42" in listing and "/approve" not in listing  # officers do not decide
    with db.session() as s:
        request = s.exec(select(RiskException)).one()
    assert request.status == "requested"

    switch(client, "admin")
    token = page_token(client, "/exceptions")
    assert f'action="/exceptions/{request.id}/approve"' in client.get("/exceptions").text
    no_reason = client.post(f"/exceptions/{request.id}/reject", data={"comment": " ", "csrf_token": token})
    assert no_reason.status_code == 422
    resp = client.post(f"/exceptions/{request.id}/approve", data={"comment": "ok", "days": "20", "csrf_token": token},
                       follow_redirects=False)
    assert resp.status_code == 303
    with db.session() as s:
        approved = s.get(RiskException, request.id)
    assert approved.status == "approved" and approved.expires_at - approved.created_at == timedelta(days=20)
    assert finding(db, item).remediation_status == "risk_accepted"
    assert "WAF rule 42" in client.get("/exceptions?tab=active").text
