"""The public ranking page: no login, only published years, and nothing below the unit level."""

from __future__ import annotations

from datetime import UTC, date, datetime

from collector.scoring import review
from collector.scoring.models import ScoreSnapshot
from collector.units import service as units
from rules.scoring.model import INDICATORS
from tests.console import helpers as h

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def freeze_year(db, year: int, values: dict[str, float]) -> None:
    with db.transaction() as s:
        for code, value in values.items():
            unit_id = units.get_by_code(s, code=code).id
            for m in range(1, 13):
                for ident in INDICATORS:
                    s.add(ScoreSnapshot(period=f"{year}-{m:02d}", unit_id=unit_id, indicator=ident,
                                        as_of=date(year, m, 14), value=value, model_version="2026.1",
                                        inputs_hash="h", frozen_at=datetime(year, m, 15, tzinfo=UTC)))


def test_only_published_years_are_public_and_show_units_not_hosts(client, db, world):
    freeze_year(db, 2025, {"D1": 88, "D2": 64.5})
    assert "Chưa có bảng xếp hạng nào được công bố." in client.get("/public/ranking").text
    assert client.get("/public/ranking/2025").status_code == 404  # frozen but not published
    with db.transaction() as s:
        review.publish(s, year=2025, by="admin", by_role="admin", now=NOW)
    page = client.get("/public/ranking/2025")
    assert page.status_code == 200 and "/login" not in str(page.url)
    text = page.text
    assert "Xếp hạng chỉ số bảo đảm an toàn thông tin 2025" in text and "Sở, ban, ngành" in text
    assert text.index("Sở Khoa học và Công nghệ") < text.index("Sở Tài chính")  # 88 ranks above 64.5
    assert "88.00" in text and "Tốt" in text and "Trung bình" in text
    # the province sees its whole tree, beside the peer groups and not ranked: (88 + 64.5) / 2
    tree = text.split("Toàn cây đơn vị (không xếp hạng)")[1].split("Sở, ban, ngành")[0]
    assert "Tỉnh mẫu" in tree and "76.25" in tree
    # the seeded world has hosts with names, packages, ports and a hostile hostname: none of it is public
    for secret in ("web01.d1.gov.vn", "db02.d2.gov.vn", "openssl", "5432", "onerror"):
        assert secret not in text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    english = client.get("/public/ranking/2025?lang=en").text
    assert "Information-security assurance ranking 2025" in english and "Departments" in english
    assert client.get("/public/ranking/2024").status_code == 404
    assert '<a href="/public/ranking/2025"' in client.get("/public/ranking").text


def test_the_page_escapes_unit_names(client, db, world):
    with db.transaction() as s:
        unit = units.get_by_code(s, code="D2")
        unit.name = '<script>alert("x")</script> Sở'
        s.add(unit)
    freeze_year(db, 2025, {"D2": 70})
    with db.transaction() as s:
        review.publish(s, year=2025, by="admin", by_role="admin", now=NOW)
    text = client.get("/public/ranking/2025").text
    assert "<script>alert" not in text and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Sở" in text


def test_a_logged_in_viewer_sees_the_same_public_page(client, db, world):
    freeze_year(db, 2025, {"D1": 75})
    with db.transaction() as s:
        review.publish(s, year=2025, by="admin", by_role="admin", now=NOW)
    h.logged_in(client, "officer2")
    page = client.get("/public/ranking/2025")
    assert page.status_code == 200 and "Sở Khoa học và Công nghệ" in page.text
