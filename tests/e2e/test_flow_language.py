"""Switching the console's language in the browser: the strings change and the choice is remembered."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.browser import go, login, switch_language

FOOTER = {"vi": "Thời gian hiển thị theo giờ Việt Nam (UTC+7).", "en": "Times are shown in Vietnam time (UTC+7)."}
HOSTS = {"vi": "Máy chủ", "en": "Hosts"}
LOG_OUT = {"vi": "Đăng xuất", "en": "Log out"}


def test_switch_vietnamese_to_english_and_back(page: Page, seeded):
    go(page, "/login", name="login-vi")
    expect(page.locator("html")).to_have_attribute("lang", "vi")  # Vietnamese first, without asking
    expect(page.get_by_role("heading", level=1)).to_have_text("Đăng nhập")
    switch_language(page, "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    expect(page.locator("footer")).to_have_text(FOOTER["en"])
    login(page, "officer")  # the choice outlives the login, and every page after it keeps it
    expect(page.get_by_role("heading", level=1)).to_have_text(HOSTS["en"])
    expect(page.locator("form.logout button")).to_have_text(LOG_OUT["en"])
    go(page, f"/hosts/{seeded.world.web01}", name="host-en")  # no ?lang= in this address
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("p.crumbs a")).to_have_text(HOSTS["en"])
    switch_language(page, "vi")
    expect(page).to_have_url(re.compile(rf"/hosts/{seeded.world.web01}\?lang=vi$"))  # same page, other language
    expect(page.locator("p.crumbs a")).to_have_text(HOSTS["vi"])
    go(page, "/hosts", name="hosts-vi")
    expect(page.get_by_role("heading", level=1)).to_have_text(HOSTS["vi"])
    expect(page.locator("form.logout button")).to_have_text(LOG_OUT["vi"])
    expect(page.locator("footer")).to_have_text(FOOTER["vi"])


def test_the_current_language_is_marked_in_the_switch(page: Page, server):
    go(page, "/login?lang=en", name="login-en")
    expect(page.locator('nav.langs a[aria-current="true"]')).to_have_attribute("hreflang", "en")
    expect(page.locator("nav.langs a[hreflang=vi]")).to_have_text("Tiếng Việt")  # named in itself
    # A fresh browser has no remembered choice: another context starts in Vietnamese again.
    other = page.context.browser.new_context(base_url=server.url)
    try:
        fresh = other.new_page()
        fresh.goto("/login")
        expect(fresh.locator("html")).to_have_attribute("lang", "vi")
    finally:
        other.close()
