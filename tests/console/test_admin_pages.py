"""Users and API tokens in the console: administrators only (every other role gets 403 and changes
nothing), accounts created, deactivated, reset and unlocked, tokens shown once and revocable."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from collector.users.models import ApiToken, User
from tests.console import accounts_helpers as a
from tests.console import helpers as h

TOKEN_IN_PAGE = r'class="token mono">(khien_pat_[A-Za-z0-9_-]+)<'


def user_id(db, username: str) -> int:
    return a.user_row(db, username).id


@pytest.fixture
def staff(db, world):
    h.add_user(db, "analyst1", "analyst")
    h.add_user(db, "auditor1", "auditor")


@pytest.mark.parametrize("name", ["analyst1", "auditor1", "officer1"])
def test_other_roles_get_403_on_every_page_and_form_and_nothing_changes(client, db, staff, name):
    h.logged_in(client, name)
    target = user_id(db, "officer2")
    assert client.get("/admin/users").status_code == 403
    assert client.get(f"/admin/users/{target}/tokens").status_code == 403
    csrf = a.page_csrf(client)
    posts = {
        "/admin/users": {"username": "intruder", "password": "x" * 16, "role": "admin"},
        f"/admin/users/{target}/deactivate": {},
        f"/admin/users/{target}/password": {"password": "y" * 16},
        f"/admin/users/{target}/unlock": {},
        f"/admin/users/{target}/totp-reset": {},
        f"/admin/users/{target}/tokens": {"days": "30"},
    }
    for path, data in posts.items():
        response = client.post(path, data={**data, "csrf_token": csrf}, follow_redirects=False)
        assert response.status_code == 403, path
    with db.session() as s:
        assert s.exec(select(User).where(User.username == "intruder")).first() is None
        assert not list(s.exec(select(ApiToken)))
    assert a.user_row(db, "officer2").is_active
    client.cookies.clear()
    assert h.login(client, "officer2").status_code == 303  # the password was not changed


def test_admin_creates_a_user_who_can_then_log_in_with_the_unit_scope(admin, client, db, world):
    page = admin.get("/admin/users")
    assert page.status_code == 200 and "officer1" in page.text and "D1" in page.text
    made = admin.post("/admin/users", data={"username": "officer3", "password": "long enough password",
                                            "role": "unit_officer", "unit": "D2",
                                            "csrf_token": h.csrf_token(page.text)}, follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"] == "/admin/users?done=created"
    assert "Người dùng đã được thêm." in admin.get(made.headers["location"]).text
    client.cookies.clear()
    assert h.login(client, "officer3", "long enough password").status_code == 303
    assert client.get(f"/hosts/{world.db02}").status_code == 200   # D2
    assert client.get(f"/hosts/{world.web01}").status_code == 404   # D1: outside the scope


def test_bad_input_is_refused_with_the_reason_and_hostile_names_come_back_escaped(admin, db):
    csrf = a.page_csrf(admin, "/admin/users")
    hostile = admin.post("/admin/users", data={"username": h.XSS, "password": "long enough password",
                                               "role": "admin", "csrf_token": csrf})
    assert hostile.status_code == 422
    assert "Tên đăng nhập phải dài 2–64 ký tự" in hostile.text
    assert h.XSS not in hostile.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile.text
    cases = [({"username": "x1", "password": "short", "role": "admin"}, 422, "ít nhất 12 ký tự"),
             ({"username": "officer1", "password": "long enough password", "role": "admin"}, 409,
              "Đã có người dùng"),
             ({"username": "o9", "password": "long enough password", "role": "unit_officer"}, 422,
              "cần có đơn vị"),
             ({"username": "o9", "password": "long enough password", "role": "root"}, 422, "vai trò"),
             ({"username": "o9", "password": "long enough password", "role": "admin", "unit": "NOPE"}, 404,
              "Không có đơn vị này.")]
    for data, status, text in cases:
        response = admin.post("/admin/users", data={**data, "csrf_token": csrf})
        assert response.status_code == status, data
        assert text in response.text, data
    with db.session() as s:
        assert s.exec(select(User).where(User.username.in_(["x1", "o9"]))).first() is None


def test_deactivate_ends_sessions_and_tokens_and_reactivate_restores_the_login(admin, client, db, world):
    other = h.login(type(client)(client.app), "officer2")  # officer2's own browser
    assert other.status_code == 303
    target = user_id(db, "officer2")
    csrf = a.page_csrf(admin, "/admin/users")
    created = admin.post(f"/admin/users/{target}/tokens", data={"days": "30", "csrf_token": csrf})
    token = re.search(TOKEN_IN_PAGE, created.text).group(1)
    bearer = {"Authorization": f"Bearer {token}"}
    assert admin.get("/api/v1/hosts", headers=bearer).status_code == 200
    out = admin.post(f"/admin/users/{target}/deactivate", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert not a.sessions_of(db, "officer2")
    assert admin.get("/api/v1/hosts", headers=bearer).status_code == 401
    fresh = type(client)(client.app)
    assert h.login(fresh, "officer2").status_code == 401
    # An administrator cannot lock themselves out by mistake.
    me = admin.post(f"/admin/users/{user_id(db, 'admin')}/deactivate", data={"csrf_token": csrf})
    assert me.status_code == 422 and a.user_row(db, "admin").is_active
    back = admin.post(f"/admin/users/{target}/reactivate", data={"csrf_token": csrf}, follow_redirects=False)
    assert back.status_code == 303 and h.login(fresh, "officer2").status_code == 303


def test_reset_password_and_unlock(admin, client, db):
    target = user_id(db, "officer2")
    browser = type(client)(client.app)  # officer2's own browser; `client` is the admin's
    for _ in range(5):
        h.login(browser, "officer2", "wrong password guess")
    assert h.login(browser, "officer2").status_code == 403
    assert "bị khóa đến" in admin.get("/admin/users").text
    csrf = a.page_csrf(admin, "/admin/users")
    assert admin.post(f"/admin/users/{target}/unlock", data={"csrf_token": csrf},
                      follow_redirects=False).status_code == 303
    assert h.login(browser, "officer2").status_code == 303
    short = admin.post(f"/admin/users/{target}/password", data={"password": "short", "csrf_token": csrf})
    assert short.status_code == 422
    reset = admin.post(f"/admin/users/{target}/password", data={"password": "a brand new password",
                                                                 "csrf_token": csrf}, follow_redirects=False)
    assert reset.status_code == 303
    assert browser.get("/hosts", follow_redirects=False).status_code == 303  # their session ended
    assert h.login(browser, "officer2").status_code == 401
    assert h.login(browser, "officer2", "a brand new password").status_code == 303


def test_admin_removes_a_lost_second_factor(admin, client, db):
    a.enable_totp(db, "officer1")
    csrf = a.page_csrf(admin, "/admin/users")
    assert admin.post(f"/admin/users/{user_id(db, 'officer1')}/totp-reset", data={"csrf_token": csrf},
                      follow_redirects=False).status_code == 303
    assert not a.user_row(db, "officer1").totp_enabled
    browser = type(client)(client.app)
    assert h.login(browser, "officer1").headers["location"] == "/hosts"  # no code asked any more


def test_a_token_is_shown_once_acts_with_the_users_scope_and_revocation_is_immediate(admin, db, world):
    target = user_id(db, "officer1")
    page = admin.get(f"/admin/users/{target}/tokens")
    assert page.status_code == 200 and "Chưa có mã truy cập API." in page.text
    csrf = h.csrf_token(page.text)
    assert admin.post(f"/admin/users/{target}/tokens", data={"days": "9999", "csrf_token": csrf}).status_code == 422
    created = admin.post(f"/admin/users/{target}/tokens", data={"days": "30", "csrf_token": csrf})
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    token = re.search(TOKEN_IN_PAGE, created.text).group(1)
    listing = admin.get(f"/admin/users/{target}/tokens").text
    assert token not in listing  # never shown again
    bearer = {"Authorization": f"Bearer {token}"}
    hosts = admin.get("/api/v1/hosts", headers=bearer)
    assert hosts.status_code == 200
    names = {row["hostname"] for row in hosts.json()["items"]}
    assert "web01.d1.gov.vn" in names and "db02.d2.gov.vn" not in names  # officer1's unit only
    with db.session() as s:
        [row] = list(s.exec(select(ApiToken).where(ApiToken.user_id == target)))
    assert 29 <= (row.expires_at - row.created_at).days <= 30
    revoked = admin.post(f"/admin/users/{target}/tokens/{row.id}/revoke", data={"csrf_token": csrf},
                         follow_redirects=False)
    assert revoked.status_code == 303
    assert admin.get("/api/v1/hosts", headers=bearer).status_code == 401
    # A token of another user cannot be revoked through this user's page.
    other = user_id(db, "officer2")
    assert admin.post(f"/admin/users/{other}/tokens/{row.id}/revoke", data={"csrf_token": csrf}).status_code == 404
