"""The users service: administrators' changes need manage_users, codes are single-use within a ±1 step
window, sessions end when idle, the login throttle counts failures per address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlmodel import select

from collector.access import Actor
from collector.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited, Unauthorized
from collector.types import utcnow
from collector.users import service as users
from collector.users import totp
from collector.users.models import ConsoleSession, User
from collector.users.throttle import LoginThrottle
from tests.collector import helpers as h

NOON = datetime(2026, 11, 22, 5, 0, 0, tzinfo=UTC)


def actor_for(db, name: str) -> Actor:
    with db.session() as s:
        user = users.get_by_username(s, username=name)
        return Actor(username=user.username, role=user.role, user_id=user.id,
                     scope=users.scope_for(s, user=user), via="console")


@pytest.fixture
def people(db):
    h.seed_units(db)
    for name, role, unit in (("admin", "admin", None), ("analyst", "analyst", None), ("auditor", "auditor", None),
                             ("officer", "unit_officer", "D1")):
        h.add_user(db, name, role, unit)


# --- codes ---------------------------------------------------------------------------------------------

def test_codes_are_accepted_one_step_either_side_and_never_at_or_before_the_last_used_step():
    secret = totp.new_secret()
    now_step = totp.step_of(NOON)
    at = pyotp.TOTP(secret)
    for offset in (-1, 0, 1):
        code = at.at(NOON + timedelta(seconds=30 * offset))
        assert totp.matching_step(secret, code, now=NOON, after_step=None) == now_step + offset
    for offset in (-2, 2):
        assert totp.matching_step(secret, at.at(NOON + timedelta(seconds=30 * offset)), now=NOON,
                                  after_step=None) is None
    current = at.at(NOON)
    assert totp.matching_step(secret, current, now=NOON, after_step=now_step) is None  # used already
    assert totp.matching_step(secret, current, now=NOON, after_step=now_step + 1) is None  # a newer one used
    assert totp.matching_step(secret, f" {current[:3]} {current[3:]} ", now=NOON, after_step=None) == now_step
    for junk in ("", "12345", "1234567", "abcdef", "12345x"):
        assert totp.matching_step(secret, junk, now=NOON, after_step=None) is None


def test_enrolment_needs_a_right_code_and_the_confirming_code_cannot_log_in(db, people):
    officer = actor_for(db, "officer")
    with db.transaction() as s:
        secret = users.begin_totp(s, actor=officer)
        assert users.begin_totp(s, actor=officer) == secret  # reloading the page keeps the same secret
    with db.transaction() as s, pytest.raises(InvalidInput):
        users.confirm_totp(s, actor=officer, code="000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    code = pyotp.TOTP(secret).now()
    with db.transaction() as s:
        users.confirm_totp(s, actor=officer, code=code)
    with db.transaction() as s, pytest.raises(Conflict):
        users.begin_totp(s, actor=officer)
    with db.transaction() as s:
        user = users.get_by_username(s, username="officer")
        token = users.start_pending_login(s, user=user, next_path="/hosts", source_ip="10.0.0.1")
    with db.transaction() as s, pytest.raises(Unauthorized):
        users.finish_pending_login(s, token=token, code=code)


def test_password_success_with_a_second_factor_does_not_reset_the_failure_counter(db, people):
    with db.transaction() as s:
        user = users.get_by_username(s, username="officer")
        user.totp_secret, user.totp_enabled, user.failed_logins = totp.new_secret(), True, 3
    with db.transaction() as s:
        users.authenticate(s, username="officer", password=h.PASSWORD)
    with db.session() as s:
        user = users.get_by_username(s, username="officer")
        assert user.failed_logins == 3 and user.last_login_at is None


# --- administrators' changes ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["analyst", "auditor", "officer"])
def test_only_administrators_manage_people(db, people, name):
    actor = actor_for(db, name)
    with db.session() as s:
        target = users.get_by_username(s, username="analyst").id
    calls = [lambda s: users.list_users(s, actor=actor),
             lambda s: users.add_user(s, actor=actor, username="newbie", password="x" * 16, role="admin",
                                      unit_code=None),
             lambda s: users.set_active(s, actor=actor, user_id=target, active=False),
             lambda s: users.reset_password(s, actor=actor, user_id=target, password="y" * 16),
             lambda s: users.unlock(s, actor=actor, user_id=target),
             lambda s: users.reset_totp(s, actor=actor, user_id=target),
             lambda s: users.issue_api_token(s, actor=actor, user_id=target, expires_in=timedelta(days=1)),
             lambda s: users.list_api_tokens(s, actor=actor, user_id=target)]
    for call in calls:
        with db.transaction(actor=actor) as s, pytest.raises(Forbidden):
            call(s)
    with db.session() as s:
        assert users.get_by_username(s, username="newbie") is None
        assert users.get_by_username(s, username="analyst").is_active


def test_admin_changes_are_audited_and_unknown_users_are_not_found(db, people):
    admin = actor_for(db, "admin")
    with db.transaction(actor=admin) as s:
        made = users.add_user(s, actor=admin, username="newbie", password="x" * 16, role="unit_officer",
                              unit_code="D2")
        made_id = made.id
    with db.transaction(actor=admin) as s, pytest.raises(NotFound):
        users.set_active(s, actor=admin, user_id=999_999, active=False)
    with db.transaction(actor=admin) as s, pytest.raises(InvalidInput):
        users.set_active(s, actor=admin, user_id=admin.user_id, active=False)
    with db.transaction(actor=admin) as s:
        users.set_active(s, actor=admin, user_id=made_id, active=False)
    from collector.audit.models import AuditEntry
    with db.session() as s:
        rows = list(s.exec(select(AuditEntry).where(AuditEntry.target_type == "users",
                                                    AuditEntry.target_id == str(made_id))))
    assert [(r.action, r.actor) for r in rows] == [("create", "admin"), ("update", "admin")]
    assert rows[0].after["password_hash"] == "[redacted]" and rows[1].after == {"is_active": False}


def test_a_revoked_or_expired_token_stops_working(db, people):
    admin = actor_for(db, "admin")
    officer_id = actor_for(db, "officer").user_id
    with db.transaction(actor=admin) as s:
        token = users.issue_api_token(s, actor=admin, user_id=officer_id, expires_in=timedelta(days=30))
        with pytest.raises(InvalidInput):
            users.issue_api_token(s, actor=admin, user_id=officer_id, expires_in=timedelta(0))
    with db.session() as s:
        assert users.get_by_api_token(s, token=token).username == "officer"
        [row] = users.list_api_tokens(s, actor=admin, user_id=officer_id)
    with db.transaction(actor=admin) as s:
        users.revoke_api_token(s, actor=admin, user_id=officer_id, token_id=row.id)
    with db.session() as s, pytest.raises(Unauthorized):
        users.get_by_api_token(s, token=token)


# --- sessions ------------------------------------------------------------------------------------------

def test_a_session_ends_after_thirty_idle_minutes_even_before_it_expires(db, people):
    with db.transaction() as s:
        user = users.get_by_username(s, username="officer")
        new = users.create_console_session(s, user=user, ttl=timedelta(hours=8), source_ip=None)
    start = utcnow()
    with db.session() as s:
        row, _ = users.get_console_session(s, token=new.token, now=start + timedelta(minutes=29))
        assert users.needs_touch(row, now=start + timedelta(minutes=29))
        assert not users.needs_touch(row, now=start + timedelta(seconds=30))
        with pytest.raises(Unauthorized):
            users.get_console_session(s, token=new.token, now=start + timedelta(minutes=31))
    with db.transaction() as s:
        users.touch_console_session(s, session_id=row.id, now=start + timedelta(minutes=29))
    with db.session() as s:  # activity at minute 29 keeps it alive until minute 59
        users.get_console_session(s, token=new.token, now=start + timedelta(minutes=58))
        assert s.exec(select(ConsoleSession)).one().last_seen_at is not None


def test_language_is_one_of_the_catalogues(db, people):
    officer = actor_for(db, "officer")
    with db.transaction(actor=officer) as s, pytest.raises(InvalidInput):
        users.set_language(s, actor=officer, language="fr")
    with db.transaction(actor=officer) as s:
        users.set_language(s, actor=officer, language="en")
    with db.session() as s:
        assert s.exec(select(User.language).where(User.username == "officer")).one() == "en"


# --- the throttle --------------------------------------------------------------------------------------

def test_throttle_counts_failures_per_address_in_a_sliding_window():
    clock = [1000.0]
    throttle = LoginThrottle(max_failures=3, window_s=60, clock=lambda: clock[0])
    for _ in range(3):
        throttle.check("10.0.0.1")
        throttle.failed("10.0.0.1")
        clock[0] += 10
    with pytest.raises(RateLimited) as refused:
        throttle.check("10.0.0.1")
    assert refused.value.retry_after == 30  # the first failure (t=1000) ages out at t=1060; now t=1030
    throttle.check("10.0.0.2")  # another address is unaffected
    clock[0] = 1061
    throttle.check("10.0.0.1")  # the oldest failure has aged out
