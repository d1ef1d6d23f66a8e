"""Console login, lockout, logout and CSRF: what a browser sees."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from collector.types import utcnow
from collector.users.models import ConsoleSession, User
from tests.console import accounts_helpers as a
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


# --- throttling per address, idle sessions, the language saved per person -----------------------------

THROTTLED_VI = "Có quá nhiều lần đăng nhập thất bại từ địa chỉ mạng này"


def test_twenty_failures_from_one_address_answer_429_with_retry_after(client):
    # Twenty different (unknown) names: no single account's lockout is involved.
    for i in range(20):
        assert h.login(client, f"guess{i:02d}", "not the password at all").status_code == 401
    refused = h.login(client, "officer2")  # even the right password, from this address, must wait
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 15 * 60
    assert THROTTLED_VI in refused.text
    assert "khien_session=" not in " ".join(refused.headers.get_list("set-cookie"))


def test_successful_logins_do_not_count_toward_the_address_limit(client):
    for _ in range(25):
        client.cookies.clear()
        assert h.login(client, "officer1").status_code == 303


def _age_session(db, username: str, *, idle: timedelta) -> None:
    with db.transaction() as s:
        user = s.exec(select(User).where(User.username == username)).one()
        for row in s.exec(select(ConsoleSession).where(ConsoleSession.user_id == user.id)):
            row.created_at = row.last_seen_at = utcnow() - idle


def test_a_session_idle_for_thirty_minutes_ends(officer1, db):
    _age_session(db, "officer1", idle=timedelta(minutes=31))
    page = officer1.get("/hosts", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_activity_pushes_the_idle_timeout_back_at_most_once_a_minute(officer1, db):
    _age_session(db, "officer1", idle=timedelta(minutes=20))
    assert officer1.get("/hosts").status_code == 200
    [row] = a.sessions_of(db, "officer1")
    assert utcnow() - row.last_seen_at < timedelta(seconds=30)  # touched
    with db.transaction() as s:  # 40 seconds ago: not worth a write yet
        fresh = s.get(ConsoleSession, row.id)
        fresh.last_seen_at = utcnow() - timedelta(seconds=40)
        stamp = fresh.last_seen_at
    assert officer1.get("/hosts").status_code == 200
    assert a.sessions_of(db, "officer1")[0].last_seen_at == stamp


def test_language_chosen_while_logged_in_follows_the_person_to_a_fresh_browser(client, db):
    h.logged_in(client, "officer1")
    assert '<html lang="en">' in client.get("/hosts?lang=en").text
    assert a.user_row(db, "officer1").language == "en"
    client.cookies.clear()  # another computer: no cookie at all
    assert '<html lang="vi">' in client.get("/login").text
    h.logged_in(client, "officer1")
    assert '<html lang="en">' in client.get("/hosts").text
    # The account page's form saves it too (CSRF-checked).
    csrf = h.csrf_token(client.get("/account").text)
    assert client.post("/account/language", data={"language": "fr", "csrf_token": csrf}).status_code == 422
    saved = client.post("/account/language", data={"language": "vi", "csrf_token": csrf}, follow_redirects=False)
    assert saved.status_code == 303 and a.user_row(db, "officer1").language == "vi"
    assert client.post("/account/language", data={"language": "en"}).status_code == 403
    assert '<html lang="vi">' in client.get("/hosts").text
    # Another person in the same browser keeps their own (unset: the browser's cookie, Vietnamese).
    assert a.user_row(db, "officer2").language is None
