"""The per-unit annual report page: contents from the data, scoped to the viewer, printable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.attestations.models import Attestation
from collector.findings.models import Finding
from collector.incidents.models import Incident
from collector.types import utcnow
from collector.units import service as units
from tests.console import helpers as h
from tests.console.test_public_ranking import freeze_year


def test_the_report_of_a_unit_for_a_year(client, db, world):
    freeze_year(db, 2025, {"D1": 88, "D2": 64.5})
    now = utcnow()
    with db.transaction() as s:
        d1 = units.get_by_code(s, code="D1").id
        s.add(Attestation(unit_id=d1, item="plan_implemented", period=2025, status="rated", submitted_by="officer1",
                          submitted_at=datetime(2025, 3, 1, tzinfo=UTC), rating="dat_mot_phan", rating_value=0.5,
                          review_comment="Chưa triển khai sao lưu ngoại tuyến", reviewed_by="admin",
                          reviewed_at=datetime(2025, 3, 2, tzinfo=UTC)))
        s.add(Finding(unit_id=d1, host_id=world.web01, identity=f"host:{world.web01}", kind="vulnerability",
                      rule="CVE-2025-1234", location="openssl", dedupe_key="k1", title="t", finding_class="P1",
                      first_seen=now - timedelta(days=40), last_seen=now, clock_start=now - timedelta(days=40),
                      due_at=now - timedelta(days=10)))
        s.add(Incident(unit_id=d1, title="Tấn công thay đổi giao diện cổng thông tin", severity="serious",
                       detected_at=datetime(2025, 6, 2, 1, tzinfo=UTC), recorded_by="officer1",
                       initial_report_at=datetime(2025, 6, 3, 9, tzinfo=UTC), created_at=now))
    viewer = h.logged_in(client, "officer1")
    page = viewer.get("/reports/D1/2025")
    assert page.status_code == 200, page.text
    text = page.text
    assert "Báo cáo an toàn thông tin hằng năm 2025" in text and "Sở Khoa học và Công nghệ (D1)" in text
    assert "Đạt một phần" in text and "Chưa triển khai sao lưu ngoại tuyến" in text
    assert "88.00" in text and "Tốt" in text and "Hạng 1 / 2" in text
    assert "CVE-2025-1234 openssl" in text and "web01.d1.gov.vn" in text and "P1: 1" in text
    assert "Mục tiêu kế hoạch" in text
    incidents = text[text.index("Tấn công thay đổi giao diện cổng thông tin"):]
    assert "nghiêm trọng" in incidents[:400] and "<td>không</td>" in incidents[:1200]  # notice after 32 h
    assert "onerror" not in text  # the hostile host of D1 is not in this report's findings, and would be escaped
    english = viewer.get("/reports/D1/2025?lang=en").text
    assert "Annual information-security report 2025" in english and "Partly met" in english


def test_a_year_without_frozen_months_says_so(client, db, world):
    page = h.logged_in(client, "admin").get("/reports/D2/2024")
    assert page.status_code == 200 and "Chưa có tháng nào của năm này được chốt số liệu." in page.text
    assert client.get("/reports/D2/2024", follow_redirects=False).status_code in (303, 200)


def test_another_units_officer_sees_no_report(client, db, world):
    viewer = h.logged_in(client, "officer2")
    assert viewer.get("/reports/D1/2025").status_code == 404  # as for a unit that does not exist
    assert viewer.get("/reports/NOPE/2025").status_code == 404
    assert viewer.get("/reports/D2/2025").status_code == 200


def test_the_report_as_pdf(client, db, world):
    freeze_year(db, 2025, {"D1": 88})
    viewer = h.logged_in(client, "officer1")
    pdf = viewer.get("/reports/D1/2025.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == 'attachment; filename="bao-cao-attt-D1-2025.pdf"'
    body = pdf.content
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF") and len(body) > 5000
    assert b"DejaVu" in body  # the Unicode font is embedded (Vietnamese diacritics need it)
    assert 'href="/reports/D1/2025.pdf"' in viewer.get("/reports/D1/2025").text
    assert viewer.get("/reports/D2/2025.pdf").status_code == 404  # another unit's report
