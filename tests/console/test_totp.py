"""The optional second factor: enrolment with a real code, login in two steps, single-use codes,
wrong codes counting toward the lockout, the pending state kept server-side."""

from __future__ import annotations

from tests.console import accounts_helpers as a
from tests.console import helpers as h

WRONG_CODE_VI = "Mã sai hoặc đã được dùng"


def test_enrol_confirm_with_a_real_code_then_the_secret_is_never_shown_again(admin, db):
    page = admin.get("/account/totp")
    assert page.status_code == 200 and "Xác thực hai bước đang tắt" in page.text
    csrf = h.csrf_token(page.text)
    started = admin.post("/account/totp", data={"action": "start", "csrf_token": csrf}, follow_redirects=False)
    assert started.status_code == 303
    enrolling = admin.get("/account/totp").text
    secret = a.SECRET_IN_PAGE.search(enrolling).group(1)
    assert f"otpauth://totp/Khi%C3%AAn:admin?secret={secret}&amp;issuer=Khi%C3%AAn" in enrolling
    assert not a.user_row(db, "admin").totp_enabled  # not before a code proves the app has it
    wrong = admin.post("/account/totp", data={"action": "confirm", "code": "000000", "csrf_token": csrf})
    assert wrong.status_code == 422 and WRONG_CODE_VI in wrong.text
    assert not a.user_row(db, "admin").totp_enabled
    ok = admin.post("/account/totp", data={"action": "confirm", "code": a.code(secret), "csrf_token": csrf},
                    follow_redirects=False)
    assert ok.status_code == 303
    row = a.user_row(db, "admin")
    assert row.totp_enabled and row.totp_secret == secret and row.totp_last_step is not None
    after = admin.get("/account/totp").text
    assert "Xác thực hai bước đang bật" in after and secret not in after


def test_login_asks_for_the_code_after_the_password_and_no_session_before_it(client, db):
    secret = a.enable_totp(db, "officer1")
    first = h.login(client, "officer1", next_path="/hosts?unit=D1")
    assert first.status_code == 303 and first.headers["location"] == "/login/totp"
    assert "khien_session=" not in " ".join(first.headers.get_list("set-cookie"))
    assert client.get("/hosts", follow_redirects=False).status_code == 303  # not logged in yet
    done = a.submit_code(client, a.code(secret))
    assert done.status_code == 303 and done.headers["location"] == "/hosts?unit=D1"  # kept server-side
    assert client.get("/hosts").status_code == 200
    assert a.user_row(db, "officer1").last_login_at is not None


def test_a_code_is_accepted_only_once(client, db):
    secret = a.enable_totp(db, "officer1")
    used = a.code(secret)
    h.login(client, "officer1")
    assert a.submit_code(client, used).status_code == 303
    client.cookies.clear()
    h.login(client, "officer1")
    replay = a.submit_code(client, used)
    assert replay.status_code == 401 and WRONG_CODE_VI in replay.text
    assert "khien_session=" not in " ".join(replay.headers.get_list("set-cookie"))
    # The next step's code (still inside the ±1 window) works on the same pending login.
    assert a.submit_code(client, a.code(secret, steps_ahead=1)).status_code == 303


def test_wrong_codes_count_toward_the_lockout_even_between_right_passwords(client, db):
    secret = a.enable_totp(db, "officer1")
    for attempt in range(5):
        client.cookies.clear()
        assert h.login(client, "officer1").status_code == 303  # the password is right every time
        refused = a.submit_code(client, "123456" if a.code(secret) != "123456" else "654321")
        assert refused.status_code == 401, attempt
    row = a.user_row(db, "officer1")
    assert row.locked_until is not None  # the right password never reset the counter
    client.cookies.clear()
    locked = h.login(client, "officer1")
    assert locked.status_code == 403 and "Tài khoản tạm thời bị khóa" in locked.text
    assert not a.sessions_of(db, "officer1")


def test_the_pending_login_is_server_side_state(client, db):
    a.enable_totp(db, "officer1")
    # Without a pending login, the second step sends the browser back to the password.
    form = client.get("/login/totp", follow_redirects=False)
    assert form.status_code == 303 and form.headers["location"] == "/login"
    # A made-up cookie value names nothing on the server.
    client.get("/login")
    client.cookies.set("khien_pending_login", "made-up-value-" + "x" * 30)
    assert client.get("/login/totp", follow_redirects=False).headers["location"] == "/login"
    # The second-step form needs its CSRF token too.
    h.login(client, "officer1")
    assert client.post("/login/totp", data={"code": "123456"}, follow_redirects=False).status_code == 403


def test_five_wrong_codes_drop_the_pending_login(client, db):
    secret = a.enable_totp(db, "officer2")
    h.login(client, "officer2")
    wrong = "111111" if a.code(secret) != "111111" else "222222"
    for _ in range(4):
        assert a.submit_code(client, wrong).status_code == 401
    last = a.submit_code(client, wrong)
    assert last.status_code == 401 and "Tên đăng nhập" in last.text  # back to the password form
    assert client.get("/login/totp", follow_redirects=False).status_code == 303


def test_disable_needs_a_current_code(officer1, db):
    secret = a.enable_totp(db, "officer1")
    csrf = a.page_csrf(officer1)
    refused = officer1.post("/account/totp", data={"action": "disable", "code": "000000", "csrf_token": csrf})
    assert refused.status_code == 422 and a.user_row(db, "officer1").totp_enabled
    ok = officer1.post("/account/totp", data={"action": "disable", "code": a.code(secret), "csrf_token": csrf},
                       follow_redirects=False)
    assert ok.status_code == 303
    row = a.user_row(db, "officer1")
    assert not row.totp_enabled and row.totp_secret is None


def test_totp_changes_need_the_csrf_token_and_the_secret_never_reaches_the_audit_log(officer1, db):
    assert officer1.post("/account/totp", data={"action": "start"}).status_code == 403
    assert a.user_row(db, "officer1").totp_secret is None
    csrf = a.page_csrf(officer1)
    officer1.post("/account/totp", data={"action": "start", "csrf_token": csrf})
    secret = a.user_row(db, "officer1").totp_secret
    from tests.console.test_audit_log import entries
    logged = [e for e in entries(db, target_type="users", action="update") if "totp_secret" in (e.after or {})]
    assert logged and all(e.after["totp_secret"] == "[redacted]" for e in logged)
    assert all(secret not in str(e.after) for e in entries(db))
