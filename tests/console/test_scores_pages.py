"""Scores pages: dashboards, ranking and its exports, attestations and evidence, appeals, adjustments,
publication and incidents — every page and form per role, in scope, CSRF-checked, hostile data escaped."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import select

from collector.attestations.models import Attestation, EvidenceFile
from collector.audit.models import AuditEntry
from collector.incidents.models import Incident
from collector.scoring import review
from collector.scoring.models import PublishedRanking, ScoreAdjustment, ScoreAppeal
from collector.types import utcnow
from collector.units import service as units
from tests.console import helpers as h
from tests.console import scores_helpers as sh

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def people(db, world):
    sh.add_people(db)


def as_user(client, name):
    """A separate browser (its own cookies) on the same app, logged in as ``name``."""
    return h.logged_in(TestClient(client.app), name)


def post_form(client, path, data, page):
    """Post a form the way the browser does: with the CSRF token of the page it came from."""
    return client.post(path, data={"csrf_token": h.csrf_token(page), **data}, follow_redirects=False)


def rename_unit(db, code, name):
    with db.transaction() as s:
        unit = units.get_by_code(s, code=code)
        unit.name = name
        s.add(unit)


# ---- dashboards ---------------------------------------------------------------------------------------

def test_a_unit_officer_lands_on_their_units_dashboard(client, db, world):
    officer = as_user(client, "officer1")
    response = officer.get("/dashboard", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/D1"
    assert officer.get("/dashboard/D2").status_code == 404  # another unit looks like no unit
    assert officer.get("/dashboard/NOPE").status_code == 404


def test_the_unit_dashboard_shows_score_trend_breakdown_and_coverage(client, db, world):
    day = sh.yesterday()
    sh.store_days(db, "D1", {day - timedelta(days=n): 60 + n / 2 for n in range(30)})
    page = as_user(client, "officer1").get("/dashboard/D1")
    assert page.status_code == 200, page.text
    text = page.text
    assert "Sở Khoa học và Công nghệ" in text and "60.00" in text  # yesterday's stored score
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in text and "<polyline" in text
    assert "Điểm 180 ngày gần nhất" in text
    for heading in ("Chi tiết theo chỉ số", "Độ bao phủ giám sát", "Phát hiện quá hạn", "Mục tiêu kế hoạch",
                    "Các tháng đã chốt và khiếu nại"):
        assert heading in text, heading
    # D1's hosts never reported: coverage names them, the hostile hostname escaped
    assert "web01.d1.gov.vn" in text and "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "style=" not in text and "<script" not in text.replace("&lt;script", "")


def test_the_unit_dashboard_without_stored_values_says_so(client, db, world):
    page = as_user(client, "admin").get("/dashboard/D2")
    assert page.status_code == 200 and "Chưa có điểm hằng ngày nào được lưu" in page.text


def test_admin_and_auditor_get_the_province_dashboard_with_a_picker(client, db, world, people):
    sh.freeze_year(db, 2025, {"D1": 88, "D2": 64.5})
    rename_unit(db, "D2", HOSTILE)
    for name in ("admin", "auditor1", "analyst1"):
        page = as_user(client, name).get("/dashboard")
        assert page.status_code == 200, (name, page.text)
        text = page.text
        assert "Bảng điều khiển toàn tỉnh" in text and "Phân bố xếp loại" in text
        assert '<option value="D1">' in text and "Sở, ban, ngành" in text
        assert "Toàn cây đơn vị (không xếp hạng)" in text and "76.25" in text  # the tree: (88 + 64.5) / 2
        assert "<script>alert" not in text and "&lt;script&gt;alert(&#34;x&#34;)" in text
        assert "<rect" in text and "bar-A" in text
        assert ("/scores/admin" in text) == (name == "admin")
    go = as_user(client, "admin").get("/dashboard/go?unit=D2", follow_redirects=False)
    assert go.status_code == 303 and go.headers["location"] == "/dashboard/D2"


def test_a_unit_officer_sees_only_their_units_in_the_province_view(client, db, world):
    sh.freeze_year(db, 2025, {"D1": 88, "D2": 64.5})
    page = as_user(client, "officer1").get("/dashboard/province")
    assert page.status_code == 200
    assert "Sở Khoa học và Công nghệ" in page.text and "Sở Tài chính" not in page.text
    assert as_user(client, "officer1").get("/dashboard/go?unit=D2").status_code == 404


# ---- ranking ------------------------------------------------------------------------------------------

def test_the_ranking_page_with_year_picker_links_and_exports(client, db, world):
    sh.freeze_year(db, 2025, {"D1": 88, "D2": 64.5})
    sh.freeze_year(db, 2024, {"D1": 50})
    page = as_user(client, "admin").get("/ranking")
    text = page.text
    assert page.status_code == 200 and "Xếp hạng chỉ số bảo đảm an toàn thông tin 2025" in text
    assert '<option value="2024">' in text and text.index("Sở Khoa học và Công nghệ") < text.index("Sở Tài chính")
    assert 'href="/dashboard/D1"' in text and 'href="/ranking/2025.csv"' in text and 'href="/ranking/2025.xlsx"' in text
    assert "Tạm tính" not in text  # twelve frozen months: final
    older = as_user(client, "admin").get("/ranking?year=2024").text
    assert "Sở Tài chính" not in older and "50.00" in older
    assert "Chưa có tháng nào của năm này được chốt số liệu." in as_user(client, "admin").get("/ranking?year=2023").text


def test_ranking_csv_and_xlsx_downloads_keep_vietnamese_text(client, db, world):
    sh.freeze_year(db, 2025, {"D1": 88, "D2": 64.5})
    admin = as_user(client, "admin")
    got = admin.get("/ranking/2025.csv")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert got.headers["content-disposition"] == 'attachment; filename="xep-hang-attt-2025.csv"'
    text = got.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["Nhóm", "Hạng", "Mã đơn vị", "Tên đơn vị"]
    assert rows[1][:4] == ["Sở, ban, ngành", "1", "D1", "Sở Khoa học và Công nghệ"] and rows[1][5] == "Tốt"
    book = admin.get("/ranking/2025.xlsx")
    assert book.headers["content-disposition"] == 'attachment; filename="xep-hang-attt-2025.xlsx"'
    sheet = load_workbook(io.BytesIO(book.content))["Sở, ban, ngành"]
    assert [c.value for c in sheet[2]][:5] == [1, "D1", "Sở Khoa học và Công nghệ", 88, "Tốt"]
    assert admin.get("/ranking/2019.csv").status_code == 404


def test_a_unit_officers_ranking_and_exports_hold_only_their_units(client, db, world):
    sh.freeze_year(db, 2025, {"D1": 88, "D2": 64.5})
    officer = as_user(client, "officer2")
    page = officer.get("/ranking?year=2025").text
    assert "Sở Tài chính" in page and "Sở Khoa học và Công nghệ" not in page
    exported = officer.get("/ranking/2025.csv").content.decode("utf-8")
    assert "Sở Tài chính" in exported and "D1" not in exported


def test_the_synthetic_badge_marks_demo_data(client, db, world):
    with db.transaction() as s:
        unit = units.get_by_code(s, code="D1")
        unit.synthetic = True
        s.add(unit)
    sh.freeze_year(db, 2025, {"D1": 88})
    text = as_user(client, "admin").get("/ranking?year=2025").text
    assert "Dữ liệu mô phỏng" in text


# ---- attestations ---------------------------------------------------------------------------------------

def test_officer_submits_uploads_and_withdraws_an_attestation(client, db, world):
    officer = as_user(client, "officer1")
    listing = officer.get("/attestations")
    assert listing.status_code == 200 and "Gửi bản tự đánh giá" in listing.text
    year = str(utcnow().year)
    done = post_form(officer, "/attestations", {"unit": "D1", "item": "drill", "period": year,
                                                "note": HOSTILE}, listing.text)
    assert done.status_code == 303, done.text
    where = done.headers["location"]
    page = officer.get(where)
    assert "Diễn tập ứng cứu sự cố an toàn thông tin" in page.text and "chờ đánh giá" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    upload = officer.post(f"{where}/files", data={"csrf_token": h.csrf_token(page.text)},
                          files={"file": ("biên bản diễn tập.pdf", sh.PDF, "application/pdf")},
                          follow_redirects=False)
    assert upload.status_code == 303, upload.text
    page = officer.get(where)
    assert "biên bản diễn tập.pdf" in page.text
    file_link = page.text.split(f'href="{where}/files/')[1].split('"')[0]
    download = officer.get(f"{where}/files/{file_link}")
    assert download.status_code == 200 and download.content == sh.PDF
    assert download.headers["content-disposition"].startswith("attachment")
    assert as_user(client, "officer2").get(f"{where}/files/{file_link}").status_code == 404
    withdrawn = post_form(officer, f"{where}/withdraw", {}, page.text)
    assert withdrawn.status_code == 303
    assert "đã rút" in officer.get(where).text


def test_an_attestation_of_another_unit_is_not_found(client, db, world, settings):
    ident = sh.attestation(db, "D1", data_dir=settings.data_dir)
    assert as_user(client, "officer2").get(f"/attestations/{ident}").status_code == 404
    page = as_user(client, "officer2").get("/attestations").text
    assert f'href="/attestations/{ident}"' not in page


def test_an_officer_cannot_submit_for_another_unit(client, db, world):
    officer = as_user(client, "officer1")
    listing = officer.get("/attestations").text
    refused = post_form(officer, "/attestations", {"unit": "D2", "item": "drill", "period": "2025"}, listing)
    assert refused.status_code == 404
    with db.session() as s:
        assert s.exec(select(Attestation)).all() == []


def test_too_large_evidence_is_refused_and_nothing_is_stored(client, db, world, settings):
    ident = sh.attestation(db, "D1", with_file=False)
    officer = as_user(client, "officer1")
    page = officer.get(f"/attestations/{ident}").text
    big = b"%PDF-1.4\n" + b"0" * (settings.evidence_max_bytes + 70 * 1024)
    refused = officer.post(f"/attestations/{ident}/files", data={"csrf_token": h.csrf_token(page)},
                           files={"file": ("big.pdf", big, "application/pdf")}, follow_redirects=False)
    assert refused.status_code == 413
    assert "Tệp quá lớn" in refused.text and "Không có gì được lưu." in refused.text
    with db.session() as s:
        assert s.exec(select(EvidenceFile)).all() == []


def test_evidence_just_over_the_limit_is_refused_while_it_is_read(db, world, tmp_path):
    import dataclasses

    from collector.settings import load_settings
    from khien.app import build_app

    small = dataclasses.replace(load_settings(data_dir=tmp_path, database_url=db.url), cookie_secure=False,
                                evidence_max_bytes=1000)
    ident = sh.attestation(db, "D1", with_file=False)
    with TestClient(build_app(small, db=db)) as client:
        officer = h.logged_in(client, "officer1")
        page = officer.get(f"/attestations/{ident}").text
        assert "1.000 B" in page or "1,000 B" in page or "1000 B" in page
        refused = officer.post(f"/attestations/{ident}/files", data={"csrf_token": h.csrf_token(page)},
                               files={"file": ("a.pdf", b"%PDF-" + b"1" * 2000, "application/pdf")})
        assert refused.status_code == 413 and "Tệp quá lớn" in refused.text
    with db.session() as s:
        assert s.exec(select(EvidenceFile)).all() == []
    assert [p for p in (tmp_path / "evidence").rglob("*") if p.is_file()] == []


def test_wrong_evidence_type_is_refused_and_nothing_is_stored(client, db, world, settings):
    ident = sh.attestation(db, "D1", with_file=False)
    officer = as_user(client, "officer1")
    page = officer.get(f"/attestations/{ident}").text
    for name, content in (("tool.exe", b"MZ\x90\x00" + b"\x00" * 100), ("page.txt", b"<html><script>x</script>"),
                          (HOSTILE + ".pdf", b"plain words")):
        refused = officer.post(f"/attestations/{ident}/files", data={"csrf_token": h.csrf_token(page)},
                               files={"file": (name, content, "application/octet-stream")})
        assert refused.status_code == 400, refused.text
        assert "Loại tệp này không được chấp nhận làm minh chứng" in refused.text
        assert "<script>" not in refused.text
    with db.session() as s:
        assert s.exec(select(EvidenceFile)).all() == []
    assert [p for p in (settings.data_dir / "evidence").rglob("*") if p.is_file()] == []


def test_an_upload_without_the_csrf_token_is_refused(client, db, world):
    ident = sh.attestation(db, "D1", with_file=False)
    officer = as_user(client, "officer1")
    refused = officer.post(f"/attestations/{ident}/files", data={"csrf_token": "wrong"},
                           files={"file": ("a.pdf", sh.PDF, "application/pdf")})
    assert refused.status_code == 403
    with db.session() as s:
        assert s.exec(select(EvidenceFile)).all() == []


def test_admin_reviews_and_rates_with_a_comment(client, db, world, settings):
    ident = sh.attestation(db, "D1", data_dir=settings.data_dir)
    admin = as_user(client, "admin")
    page = admin.get(f"/attestations/{ident}").text
    assert "Đánh giá và xếp mức" in page and "Đạt một phần" in page
    missing = post_form(admin, f"/attestations/{ident}/review", {"rating": "dat_mot_phan", "comment": ""}, page)
    assert missing.status_code == 422 and "Không có gì được thay đổi." in missing.text
    rated = post_form(admin, f"/attestations/{ident}/review",
                      {"rating": "dat_mot_phan", "comment": "Thiếu biên bản " + HOSTILE}, page)
    assert rated.status_code == 303
    text = admin.get(f"/attestations/{ident}").text
    assert "Đạt một phần" in text and "Thiếu biên bản &lt;script&gt;" in text and "Đánh giá và xếp mức" not in text
    with db.session() as s:
        entries = s.exec(select(AuditEntry).where(AuditEntry.target_type == "attestations")).all()
        assert any(e.actor == "admin" and e.action == "update" for e in entries)


def test_an_officer_cannot_review_and_an_auditor_changes_nothing(client, db, world, people, settings):
    ident = sh.attestation(db, "D1", data_dir=settings.data_dir)
    officer = as_user(client, "officer1")
    page = officer.get(f"/attestations/{ident}").text
    assert "Đánh giá và xếp mức" not in page
    assert post_form(officer, f"/attestations/{ident}/review", {"rating": "dat"}, page).status_code == 403
    auditor = as_user(client, "auditor1")
    page = auditor.get(f"/attestations/{ident}").text
    assert auditor.get("/attestations").status_code == 200
    assert 'method="post" action="/attestations' not in page
    assert "Gửi bản tự đánh giá" not in auditor.get("/attestations").text
    for path, data in ((f"/attestations/{ident}/review", {"rating": "dat"}), (f"/attestations/{ident}/withdraw", {}),
                       ("/attestations", {"unit": "D1", "item": "drill", "period": "2025"})):
        assert post_form(auditor, path, data, page).status_code == 403, path
    upload = auditor.post(f"/attestations/{ident}/files", data={"csrf_token": h.csrf_token(page)},
                          files={"file": ("more.pdf", sh.PDF + b"%more", "application/pdf")})
    assert upload.status_code == 403
    with db.session() as s:
        row = s.get(Attestation, ident)
        assert row.status == "submitted" and len(s.exec(select(Attestation)).all()) == 1
        assert len(s.exec(select(EvidenceFile)).all()) == 1  # only the file the admin attached


def test_an_analyst_sees_the_review_form(client, db, world, people, settings):
    ident = sh.attestation(db, "D2", data_dir=settings.data_dir)
    analyst = as_user(client, "analyst1")
    page = analyst.get(f"/attestations/{ident}").text
    assert "Đánh giá và xếp mức" in page and "Gửi bản tự đánh giá" not in analyst.get("/attestations").text
    answer = post_form(analyst, f"/attestations/{ident}/review", {"rating": "dat"}, page)
    # Analysts review evidence (collector.access: review_evidence); the service agrees.
    assert answer.status_code == 303
    with db.session() as s:
        assert s.get(Attestation, ident).status == "rated"


def test_forms_without_a_csrf_token_are_refused(client, db, world, settings):
    ident = sh.attestation(db, "D1", data_dir=settings.data_dir)
    admin = as_user(client, "admin")
    for path, data in ((f"/attestations/{ident}/review", {"rating": "dat"}), ("/appeals", {"unit": "D1"}),
                       ("/scores/admin/publish", {"year": "2025", "publish": "yes"}),
                       ("/incidents", {"unit": "D1"})):
        assert admin.post(path, data=data, follow_redirects=False).status_code == 403, path
    with db.session() as s:
        assert s.get(Attestation, ident).status == "submitted"


# ---- appeals --------------------------------------------------------------------------------------------

def test_an_officer_appeals_a_frozen_value_and_the_admin_decides(client, db, world):
    period = sh.freeze_latest_month(db)
    officer = as_user(client, "officer1")
    dash = officer.get("/dashboard/D1").text
    assert 'action="/appeals"' in dash and f'<option value="{period}">' in dash
    filed = post_form(officer, "/appeals", {"unit": "D1", "period": period, "indicator": "A1",
                                            "reason": "Máy chủ đã báo cáo đủ " + HOSTILE}, dash)
    assert filed.status_code == 303, filed.text
    listing = officer.get("/appeals").text
    assert "Máy chủ đã báo cáo đủ &lt;script&gt;" in listing and "chờ quyết định" in listing
    assert 'action="/appeals/' not in listing  # officers do not decide
    assert "Máy chủ đã báo cáo" not in as_user(client, "officer2").get("/appeals").text
    admin = as_user(client, "admin")
    page = admin.get("/appeals").text
    appeal_id = page.split('action="/appeals/')[1].split("/")[0]
    bad = post_form(admin, f"/appeals/{appeal_id}/decide", {"outcome": "accept", "decision": "Đúng là thiếu dữ liệu"},
                    page)
    assert bad.status_code == 422
    ok = post_form(admin, f"/appeals/{appeal_id}/decide",
                   {"outcome": "accept", "corrected_value": "92,5", "decision": "Đúng là thiếu dữ liệu"}, page)
    assert ok.status_code == 303
    with db.session() as s:
        row = s.get(ScoreAppeal, int(appeal_id))
        assert row.status == "accepted" and row.corrected_value == 92.5 and row.decided_by == "admin"
    assert "92.50" in admin.get("/appeals").text
    assert "92.5*" in officer.get("/dashboard/D1").text


def test_an_appeal_after_the_window_is_refused_with_a_clear_message(client, db, world):
    sh.freeze_year(db, 2025, {"D1": 70})
    officer = as_user(client, "officer1")
    page = officer.get("/appeals").text
    refused = post_form(officer, "/appeals", {"unit": "D1", "period": "2025-03", "indicator": "A2",
                                              "reason": "Giá trị A2 bị tính sai"}, page)
    assert refused.status_code == 422
    closes = review.working_days_after(date(2025, 3, 15), 10)  # frozen on the 15th: ten working days
    assert f"Thời hạn khiếu nại kỳ 2025-03 đã kết thúc ngày {closes.isoformat()}" in refused.text
    with db.session() as s:
        assert s.exec(select(ScoreAppeal)).all() == []


def test_appeals_by_other_units_auditors_and_analysts_are_refused(client, db, world, people):
    period = sh.freeze_latest_month(db)
    data = {"period": period, "indicator": "A1", "reason": "Giá trị A1 bị tính sai"}
    officer = as_user(client, "officer2")
    page = officer.get("/appeals").text
    assert post_form(officer, "/appeals", {"unit": "D1", **data}, page).status_code == 404
    for name in ("auditor1", "analyst1"):
        other = as_user(client, name)
        assert post_form(other, "/appeals", {"unit": "D1", **data}, other.get("/appeals").text).status_code == 403
    with db.session() as s:
        assert s.exec(select(ScoreAppeal)).all() == []


# ---- adjustments and publication ------------------------------------------------------------------------

def test_admin_adds_and_revokes_an_adjustment_and_publishes(client, db, world):
    sh.freeze_year(db, 2025, {"D1": 80, "D2": 60})
    admin = as_user(client, "admin")
    page = admin.get("/scores/admin?year=2025").text
    assert "Thêm điều chỉnh" in page and "Công bố bảng xếp hạng" in page
    added = post_form(admin, "/scores/admin/adjustments", {"unit": "D1", "year": "2025", "kind": "bonus",
                                                           "points": "3", "reason": "Chủ trì diễn tập cấp tỉnh"}, page)
    assert added.status_code == 303 and added.headers["location"] == "/scores/admin?year=2025"
    assert "83.00" in admin.get("/ranking?year=2025").text
    page = admin.get("/scores/admin?year=2025").text
    assert "Chủ trì diễn tập cấp tỉnh" in page
    bad = post_form(admin, "/scores/admin/adjustments", {"unit": "D1", "year": "2025", "kind": "bonus",
                                                         "points": "9", "reason": "Quá nhiều điểm thưởng"}, page)
    assert bad.status_code == 422
    with db.session() as s:
        adjustment = s.exec(select(ScoreAdjustment)).one()
    assert post_form(admin, f"/scores/admin/adjustments/{adjustment.id}/revoke", {"year": "2025"},
                     page).status_code == 303
    assert "80.00" in admin.get("/ranking?year=2025").text
    published = post_form(admin, "/scores/admin/publish", {"year": "2025", "publish": "yes"}, page)
    assert published.status_code == 303 and client.get("/public/ranking/2025").status_code == 200
    again = post_form(admin, "/scores/admin/publish", {"year": "2025", "publish": "yes"}, page)
    assert again.status_code == 409
    assert post_form(admin, "/scores/admin/publish", {"year": "2025", "publish": "no"}, page).status_code == 303
    with db.session() as s:
        assert s.exec(select(PublishedRanking)).all() == []


def test_only_admins_govern_scores(client, db, world, people):
    sh.freeze_year(db, 2025, {"D1": 80})
    with db.transaction() as s:
        review.add_adjustment(s, unit_code="D1", year=2025, kind="bonus", points=2, reason="Điểm thưởng hợp lệ",
                              by="admin", by_role="admin", now=datetime(2025, 12, 20, tzinfo=UTC))
        adjustment_id = s.exec(select(ScoreAdjustment)).one().id
    for name in ("analyst1", "auditor1", "officer1"):
        user = as_user(client, name)
        page = user.get("/scores/admin?year=2025")
        assert page.status_code == 200 and "Điểm thưởng hợp lệ" in page.text
        assert 'method="post" action="/scores' not in page.text
        for path, data in (("/scores/admin/publish", {"year": "2025", "publish": "yes"}),
                           (f"/scores/admin/adjustments/{adjustment_id}/revoke", {"year": "2025"}),
                           ("/scores/admin/adjustments", {"unit": "D1", "year": "2025", "kind": "bonus",
                                                          "points": "1", "reason": "không được phép"})):
            assert post_form(user, path, data, page.text).status_code == 403, (name, path)
    with db.session() as s:
        assert s.exec(select(PublishedRanking)).all() == []
        assert len(s.exec(select(ScoreAdjustment)).all()) == 1
        assert s.get(ScoreAdjustment, adjustment_id).revoked_at is None


# ---- incidents ------------------------------------------------------------------------------------------

def test_an_officer_records_an_incident_and_its_reports(client, db, world):
    officer = as_user(client, "officer1")
    page = officer.get("/incidents").text
    assert "Ghi nhận sự cố" in page
    detected = (utcnow() - timedelta(hours=30)).astimezone(UTC) + timedelta(hours=7)  # Vietnam wall clock
    recorded = post_form(officer, "/incidents", {
        "unit": "D1", "title": "Thay đổi giao diện " + HOSTILE, "severity": "serious",
        "detected_at": detected.strftime("%Y-%m-%dT%H:%M"), "summary": "Trang chủ bị thay đổi"}, page)
    assert recorded.status_code == 303, recorded.text
    page = officer.get("/incidents").text
    assert "Thay đổi giao diện &lt;script&gt;" in page and "<script>alert" not in page
    assert '<span class="lost">không</span>' in page  # 30 h without the initial notice: late
    with db.session() as s:
        incident = s.exec(select(Incident)).one()
    assert incident.detected_at.astimezone(UTC).strftime("%H:%M") == (detected - timedelta(hours=7)).strftime("%H:%M")
    reported_at = (detected + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    done = post_form(officer, f"/incidents/{incident.id}/reported", {"stage": "initial", "at": reported_at}, page)
    assert done.status_code == 303
    with db.session() as s:
        assert s.get(Incident, incident.id).initial_report_at is not None
    bad = post_form(officer, "/incidents", {"unit": "D1", "title": "x", "severity": "serious",
                                            "detected_at": "not a time"}, page)
    assert bad.status_code == 422
    assert "Sự cố" in as_user(client, "officer2").get("/incidents").text
    assert "Thay đổi giao diện" not in as_user(client, "officer2").get("/incidents").text


def test_incident_forms_are_refused_to_auditors_and_other_units(client, db, world, people):
    auditor = as_user(client, "auditor1")
    page = auditor.get("/incidents").text
    assert "Ghi nhận sự cố" not in page
    data = {"unit": "D1", "title": "Sự cố thử", "severity": "normal", "detected_at": "2025-01-01T08:00"}
    assert post_form(auditor, "/incidents", data, page).status_code == 403
    officer = as_user(client, "officer2")
    assert post_form(officer, "/incidents", data, officer.get("/incidents").text).status_code == 404
    with db.session() as s:
        assert s.exec(select(Incident)).all() == []
    analyst = as_user(client, "analyst1")  # the SOC records incidents it handles, for any unit
    assert post_form(analyst, "/incidents", data, analyst.get("/incidents").text).status_code == 303
    with db.session() as s:
        assert [i.title for i in s.exec(select(Incident)).all()] == ["Sự cố thử"]


# ---- every page, every role ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["admin", "analyst1", "auditor1", "officer1"])
def test_every_page_answers_for_every_role(client, db, world, people, settings, name):
    sh.freeze_year(db, 2025, {"D1": 80, "D2": 70})
    ident = sh.attestation(db, "D1", data_dir=settings.data_dir)
    user = as_user(client, name)
    for path in ("/dashboard/province", "/dashboard/D1", "/ranking", "/ranking?year=2025", "/attestations",
                 f"/attestations/{ident}", "/appeals", "/scores/admin", "/incidents", "/ranking/2025.csv"):
        page = user.get(path)
        assert page.status_code == 200, (name, path, page.text[:500])
        if path.endswith(".csv"):
            continue
        assert "style=" not in page.text and "<script" not in page.text, (name, path)
    assert (user.get("/dashboard/D2").status_code == 404) == (name == "officer1")
    assert user.get("/dashboard", follow_redirects=False).status_code == (303 if name == "officer1" else 200)


def test_pages_need_a_login(client, db, world):
    for path in ("/dashboard", "/dashboard/D1", "/ranking", "/attestations", "/appeals", "/scores/admin",
                 "/incidents", "/ranking/2025.csv"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path


def test_english_pages(client, db, world):
    sh.freeze_year(db, 2025, {"D1": 80})
    admin = as_user(client, "admin")
    assert "Province dashboard" in admin.get("/dashboard/province?lang=en").text
    assert "Indicator breakdown" in admin.get("/dashboard/D1").text
    assert "Attestations and evidence" in admin.get("/attestations").text
