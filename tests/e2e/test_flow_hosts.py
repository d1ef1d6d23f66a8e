"""Hosts list to host page, with agent data that is markup: it must show as text and never run."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.browser import go, login, shot, watch_of
from tests.e2e.seed import HOSTILE_HOSTNAME, HOSTILE_PACKAGE


def test_hosts_list_to_the_hostile_host_shows_markup_as_text(page: Page, seeded):
    login(page, "admin")
    go(page, "/hosts", name="hosts")
    rows = page.locator("table.data tbody tr")
    expect(rows).to_have_count(3)
    for name in ("web01.d1.gov.vn", "db02.d2.gov.vn"):
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    hostile = page.get_by_role("link", name=HOSTILE_HOSTNAME, exact=True)
    expect(hostile).to_have_text(HOSTILE_HOSTNAME)  # the DOM holds the characters, not a <script> element
    assert page.locator("script:not([src])").count() == 0  # no inline script element was injected
    hostile.click()
    expect(page).to_have_url(re.compile(rf"/hosts/{seeded.world.hostile}$"))
    shot(page, "hostile-host")
    expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE_HOSTNAME)
    expect(page).to_have_title(f"{HOSTILE_HOSTNAME} · Khiên")
    # In the (collapsed) packages section: present in the DOM as text, whether or not it is unfolded.
    expect(page.locator("td", has_text=HOSTILE_PACKAGE).first).to_have_text(HOSTILE_PACKAGE)
    assert page.locator("script:not([src])").count() == 0
    assert page.locator("[onerror]").count() == 0  # the package name did not become an <img onerror=...>
    assert watch_of(page).dialogs == []


def test_an_officer_sees_only_the_own_units_hosts(page: Page, seeded):
    login(page, "officer")  # officer1, unit D1
    expect(page.locator("table.data tbody tr")).to_have_count(2)  # web01 and the hostile host
    expect(page.get_by_role("link", name="db02.d2.gov.vn")).to_have_count(0)
    go(page, f"/hosts/{seeded.world.db02}", status=404, name="other-units-host")
    expect(page.locator("body")).not_to_contain_text("db02.d2.gov.vn")
