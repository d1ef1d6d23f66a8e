"""Console login, lockout, logout and CSRF: what a browser sees."""

from __future__ import annotations

from tests.console import helpers as h

GENERIC_ERROR_VI = "Tên đăng nhập hoặc mật khẩu không đúng."
LOCKED_VI = "Tài khoản tạm thời bị khóa"


def test_login_sets_an_httponly_samesite_session_cookie(client, settings):
    response = h.login(client, "officer1")
    assert response.status_code == 303
    assert response.headers["location"] == "/hosts"
    cookie = h.session_cookie_header(response).lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/" in cookie
    assert f"max-age={settings.session_ttl_s}" in cookie
    assert "secure" not in cookie  # plain-HTTP settings: a Secure cookie would never come back
    assert client.get("/hosts").status_code == 200


def test_login_cookies_are_secure_when_cookie_secure_is_on(https_client):
    form = https_client.get("/login")
    login_csrf = [c for c in form.headers.get_list("set-cookie") if c.startswith("__Host-khien_login_csrf=")]
    assert login_csrf and "secure" in login_csrf[0].lower()
    response = h.login(https_client, "officer1")
    assert response.status_code == 303
    cookie = h.session_cookie_header(response).lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_wrong_password_and_unknown_user_get_the_same_generic_message(client):
    wrong = h.login(client, "officer1", "not the password at all")
    unknown = h.login(client, "nobody-here", "not the password at all")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert GENERIC_ERROR_VI in response.text
        assert "khien_session=" not in " ".join(response.headers.get_list("set-cookie"))


def test_five_failures_lock_the_account_even_against_the_right_password(client):
    for _ in range(5):
        assert h.login(client, "officer1", "wrong password guess").status_code == 401
    locked = h.login(client, "officer1")  # the right password, but too late
    assert locked.status_code == 403
    assert LOCKED_VI in locked.text
    assert "khien_session=" not in " ".join(locked.headers.get_list("set-cookie"))
    assert client.get("/hosts", follow_redirects=False).status_code == 303
    # Other accounts are unaffected.
    assert h.login(client, "officer2").status_code == 303


def test_logout_ends_the_session_server_side(client):
    response = h.login(client, "officer1")
    old_token = response.cookies["khien_session"]
    page = client.get("/hosts")
    out = client.post("/logout", data={"csrf_token": h.csrf_token(page.text)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert 'khien_session=""' in " ".join(out.headers.get_list("set-cookie"))
    # Replaying the old cookie (as a thief who copied it would) gets the login page, not data.
    client.cookies.clear()
    client.cookies.set("khien_session", old_token)
    replay = client.get("/hosts", follow_redirects=False)
    assert replay.status_code == 303
    assert replay.headers["location"].startswith("/login")


def test_posts_without_or_with_a_wrong_csrf_token_are_refused(officer1):
    assert officer1.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert officer1.post("/logout", data={"csrf_token": "forged"}, follow_redirects=False).status_code == 403
    # The refused logouts did nothing: the session still works.
    assert officer1.get("/hosts").status_code == 200


def test_login_form_needs_its_double_submit_token(client):
    client.get("/login")
    no_token = client.post("/login", data={"username": "officer1", "password": h.PASSWORD})
    assert no_token.status_code == 403
    client.cookies.clear()  # a cross-site form cannot read or set our cookie
    forged = client.post("/login", data={"username": "officer1", "password": h.PASSWORD, "csrf_token": "x" * 32})
    assert forged.status_code == 403


def test_unauthenticated_pages_redirect_to_login(client, world):
    for path in ("/", "/hosts", f"/hosts/{world.web01}"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login"), path


def test_login_returns_to_the_requested_page_but_never_off_site(client, world):
    back = h.login(client, "admin", next_path=f"/hosts/{world.web01}")
    assert back.headers["location"] == f"/hosts/{world.web01}"
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil.example"):
        client.cookies.clear()
        assert h.login(client, "admin", next_path=evil).headers["location"] == "/hosts"
