"""The public ranking of a published year (no login) and a unit's annual report with its PDF."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.browser import DOWNLOADS, go, login, shot, switch_language, watch_of
from tests.e2e.seed import HOSTILE_HOSTNAME, PUBLISHED_YEAR

TITLE_VI = f"Xếp hạng chỉ số bảo đảm an toàn thông tin {PUBLISHED_YEAR}"
TITLE_EN = f"Information-security assurance ranking {PUBLISHED_YEAR}"


def test_public_ranking_of_a_published_year(page: Page):
    go(page, "/public/ranking", name="public-years")
    expect(page.locator(".mainnav")).to_have_count(0)  # nobody is logged in, and nothing asks to
    page.locator("nav.toc").get_by_role("link", name=str(PUBLISHED_YEAR), exact=True).click()
    expect(page).to_have_url(re.compile(rf"/public/ranking/{PUBLISHED_YEAR}$"))
    shot(page, "public-ranking")
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE_VI)
    text = page.locator("main").inner_text()
    assert text.index("Sở Khoa học và Công nghệ") < text.index("Sở Tài chính")  # 88 ranks above 64.5
    assert "88.00" in text and "64.50" in text
    for secret in ("web01.d1.gov.vn", "db02.d2.gov.vn", HOSTILE_HOSTNAME, "openssl"):
        assert secret not in text  # units only: nothing about hosts is public
    switch_language(page, "en")
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE_EN)
    go(page, f"/public/ranking/{PUBLISHED_YEAR - 1}", status=404, name="unpublished-year")


def test_unit_annual_report_page_and_its_pdf(page: Page):
    login(page, "officer")  # officer1 of D1
    go(page, f"/reports/D1/{PUBLISHED_YEAR}", name="report-d1")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Báo cáo an toàn thông tin hằng năm {PUBLISHED_YEAR}")
    main = page.locator("main")
    expect(main).to_contain_text("Sở Khoa học và Công nghệ (D1)")
    expect(main).to_contain_text("88.00")
    expect(main).to_contain_text("Hạng 1 / 2")
    with page.expect_download() as info:
        page.get_by_role("link", name="Tải về dạng PDF").click()
    download = info.value
    assert download.suggested_filename == f"bao-cao-attt-D1-{PUBLISHED_YEAR}.pdf"
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    saved = DOWNLOADS / f"{watch_of(page).test}-{download.suggested_filename}"
    download.save_as(saved)
    body = saved.read_bytes()
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF") and b"DejaVu" in body
    shot(page, "after-download")  # the page stays; the file went to the downloads
    go(page, f"/reports/D2/{PUBLISHED_YEAR}", status=404, name="other-units-report")
