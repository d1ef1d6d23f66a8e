"""Logging in and out in a real browser: the error message, each role's landing page, the back button."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import fill_login, go, login, logout, shot
from tests.e2e.seed import HOSTILE_HOSTNAME, USERS

WRONG_PASSWORD_VI = "Tên đăng nhập hoặc mật khẩu không đúng."


def test_wrong_password_is_refused_then_the_right_one_lets_in(page: Page, seeded):
    web01 = seeded.world.web01
    go(page, f"/hosts/{web01}", name="host-before-login")  # sent to the form, the way back remembered
    expect(page).to_have_url(re.compile(rf"/login\?next=%2Fhosts%2F{web01}$"))
    fill_login(page, USERS["analyst"], "definitely not the password")
    expect(page.get_by_role("alert")).to_have_text(WRONG_PASSWORD_VI)
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.locator("#username")).to_have_value(USERS["analyst"])  # kept; the password is not
    expect(page.locator("#password")).to_have_value("")
    shot(page, "wrong-password")
    assert not [c for c in page.context.cookies() if c["name"] == "khien_session"]
    login(page, "analyst")
    expect(page).to_have_url(re.compile(rf"/hosts/{web01}$"))  # back where the flow was heading
    expect(page.locator(".who")).to_contain_text("analyst")
    session = next(c for c in page.context.cookies() if c["name"] == "khien_session")
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"


@pytest.mark.parametrize(("role", "label", "sees_audit", "sees_users"), [
    pytest.param("admin", "Quản trị viên", True, True, id="admin"),
    pytest.param("analyst", "Chuyên viên phân tích SOC", False, False, id="analyst"),
    pytest.param("officer", "Cán bộ an toàn thông tin đơn vị", False, False, id="officer"),
    pytest.param("auditor", "Cán bộ kiểm tra", True, False, id="auditor"),
])
def test_every_role_logs_in_and_sees_its_menu(page: Page, role: str, label: str, sees_audit: bool,
                                              sees_users: bool):
    login(page, role)
    expect(page.locator(".who .role")).to_have_text(label)
    nav = page.locator("nav.mainnav")
    expect(nav.locator('a[href="/audit"]')).to_have_count(1 if sees_audit else 0)
    expect(nav.locator('a[href="/admin/users"]')).to_have_count(1 if sees_users else 0)


def test_after_logout_the_back_button_shows_no_data(page: Page, seeded):
    login(page, "admin")
    go(page, f"/hosts/{seeded.world.web01}", name="host-web01")
    expect(page.get_by_role("heading", level=1)).to_contain_text("web01.d1.gov.vn")
    logout(page)
    page.go_back()  # the host page was served no-store: the browser asks again and is sent to log in
    page.wait_for_load_state()
    expect(page).to_have_url(re.compile(r"/login\?next="))
    shot(page, "back-after-logout")
    body = page.locator("body").inner_text()
    assert "web01.d1.gov.vn" not in body and "openssl" not in body and HOSTILE_HOSTNAME not in body
    go(page, "/hosts", name="hosts-after-logout")
    expect(page).to_have_url(re.compile(r"/login"))
