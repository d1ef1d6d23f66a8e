"""A day's work in the browser: triage an alert, suppress a noisy rule, work a remediation item, ask for and
approve a risk acceptance, upload and rate evidence, read the ranking and the dashboards.

Each flow clicks through the real pages of a real server and checks the result in the database too.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

from playwright.sync_api import Page, expect

from collector.alerts.models import Alert, AlertSuppression
from collector.attestations.models import Attestation
from collector.db import Database
from collector.exceptions.models import RiskException
from collector.findings.models import Finding
from tests.e2e.browser import go, login, logout, shot

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


@contextmanager
def database(server):
    db = Database(server.db_url)
    try:
        with db.session() as s:
            yield s
    finally:
        db.dispose()


def test_an_analyst_triages_an_alert_through_its_workflow(page: Page, server, seeded):
    login(page, "analyst")
    go(page, "/alerts", name="alert-queue")
    page.locator(f'a[href="/alerts/{seeded.triage_alert}"]').first.click()
    expect(page).to_have_url(re.compile(rf"/alerts/{seeded.triage_alert}$"))
    expect(page.locator("body")).to_contain_text("Failed password for root")  # the triggering raw line
    shot(page, "alert-page")
    page.locator('form.workflow button[value="acknowledged"]').click()
    page.locator("#assignee").fill("analyst")
    page.locator('form[action$="/assign"] button[type=submit]').click()
    page.locator("#comment-body").fill("Nguồn 203.0.113.9 đã bị chặn trên tường lửa.")
    page.locator('form[action$="/comments"] button[type=submit]').click()
    page.locator('form.workflow button[value="resolved"]').click()
    shot(page, "alert-resolved")
    expect(page.locator("body")).to_contain_text("Nguồn 203.0.113.9 đã bị chặn trên tường lửa.")
    with database(server) as s:
        alert = s.get(Alert, seeded.triage_alert)
        assert (alert.status, alert.assignee) == ("resolved", "analyst")
        assert alert.acknowledged_at is not None and alert.closed_at is not None


def test_an_analyst_suppresses_a_noisy_rule_on_one_host(page: Page, server, seeded):
    login(page, "analyst")
    go(page, f"/alerts/{seeded.suppress_alert}", name="alert-to-suppress")
    form = page.locator("form.suppress-form")
    form.locator("#sup-kind").select_option("snooze")
    form.locator("#sup-scope").select_option("host")
    form.locator("#sup-reason").fill("Máy quét lỗ hổng nội bộ, lịch hằng tuần")
    form.locator("button[type=submit]").click()
    shot(page, "suppressed")
    with database(server) as s:
        rows = s.query(AlertSuppression).filter(AlertSuppression.rule_id == "net_any_port_scan").all()
    assert len(rows) == 1 and rows[0].host_id == seeded.world.web01


def test_an_officer_works_a_remediation_item_and_asks_for_a_risk_acceptance(page: Page, server, seeded):
    login(page, "officer")
    go(page, "/remediation", name="remediation")
    go(page, f"/remediation/{seeded.remediation_finding}", name="remediation-item")
    page.locator("#new-status").select_option("in_progress")
    page.locator('form[action$="/status"] button[type=submit]').click()
    page.locator("#body").fill("Đã lên lịch nâng cấp OpenSSL vào tối thứ Sáu.")
    page.locator('form[action$="/comments"] button[type=submit]').click()
    page.locator("#new-status").select_option("fixed_pending_verification")
    page.locator('form[action$="/status"] button[type=submit]').click()
    shot(page, "remediation-fixed")
    with database(server) as s:
        assert s.get(Finding, seeded.remediation_finding).remediation_status == "fixed_pending_verification"
    go(page, f"/remediation/{seeded.exception_finding}", name="exception-item")
    page.locator("#justification").fill("Ứng dụng cũ cần nginx 1.22, nhà cung cấp hẹn bản vá tháng sau.")
    page.locator("#control").fill("Chỉ mở cổng 443 cho mạng nội bộ")
    page.locator("#days").fill("30")
    page.locator('form[action$="/exception"] button[type=submit]').click()
    shot(page, "exception-requested")
    logout(page)

    login(page, "admin")
    go(page, "/exceptions", name="exceptions")
    with database(server) as s:
        request = s.query(RiskException).filter(RiskException.status == "requested").one()
    page.locator(f"#approve-comment-{request.id}").fill("Đồng ý, rà soát lại sau 30 ngày.")
    page.locator(f'form[action="/exceptions/{request.id}/approve"] button[type=submit]').click()
    shot(page, "exception-approved")
    with database(server) as s:
        approved = s.get(RiskException, request.id)
        assert approved.status == "approved" and approved.decided_by == "admin"
        assert s.get(Finding, seeded.exception_finding).remediation_status == "risk_accepted"


def test_evidence_is_uploaded_by_the_unit_and_rated_by_an_analyst(page: Page, server, seeded, tmp_path):
    login(page, "officer")
    go(page, "/attestations", name="attestations")
    page.locator("#a-unit").select_option("D1")
    page.locator("#a-item").select_option("training")
    page.locator("#a-note").fill("Tập huấn an toàn thông tin cho 40 cán bộ")
    page.locator('form[method=post][action="/attestations"] button[type=submit]').click()
    expect(page).to_have_url(re.compile(r"/attestations/\d+"))
    attestation_id = int(page.url.rsplit("/", 1)[1].split("?")[0])
    evidence = tmp_path / "bien-ban-tap-huan.pdf"
    evidence.write_bytes(PDF)
    page.locator("#file").set_input_files(str(evidence))
    page.locator('form[action$="/files"] button[type=submit]').click()
    expect(page.locator("body")).to_contain_text("bien-ban-tap-huan.pdf")
    shot(page, "evidence-uploaded")
    logout(page)

    login(page, "analyst")
    go(page, f"/attestations/{attestation_id}", name="attestation-to-rate")
    page.locator("#rating").select_option("dat")
    page.locator("#comment").fill("Biên bản đầy đủ chữ ký.")
    page.locator('form[action$="/review"] button[type=submit]').click()
    shot(page, "attestation-rated")
    with database(server) as s:
        row = s.get(Attestation, attestation_id)
        assert (row.status, row.rating, row.reviewed_by) == ("rated", "dat", "analyst")


def test_the_ranking_and_the_dashboards(page: Page, seeded):
    login(page, "auditor")
    go(page, f"/ranking?year={seeded.year}", name="ranking")
    expect(page.locator("body")).to_contain_text("Sở Khoa học và Công nghệ")
    go(page, "/dashboard/province", name="province-dashboard")
    assert page.locator("svg").count() >= 1  # the grade distribution, drawn on the server
    go(page, "/dashboard/D1", name="unit-dashboard")
    expect(page.locator("form[method=post]")).to_have_count(1)  # an auditor changes nothing: only log out
